"""The Ray executor on the session's local Ray: what only a real cluster can show."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.actors import find_actor
from cluster.settings import Settings
from engine.execution.breaker import BREAKER_ACTOR_NAME, BreakerPolicy
from engine.execution.events import Event
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.states import EventType, NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s
from tests.engine.execution.test_inprocess import square_doc
from tests.engine.execution.test_window import most_at_once

pytestmark = pytest.mark.usefixtures("ray_session")

#: Sleeping nodes need no CPU: asking for none keeps these tests independent of what else holds the session's
#: CPUs (other tests' Serve replicas, for instance).
NO_CPU = {"num_cpus": 0}


def run_ray(wf: Workflow, inputs: dict[str, Any] | None, settings: Settings, **kw: Any) -> engine.RunResult:
    kw.setdefault("cache", False)
    kw.setdefault("executor", RayExecutor())
    return engine.run(wf, inputs, settings=settings, **kw)


def test_independent_nodes_run_in_parallel(settings: Settings) -> None:
    wf = Workflow("parallel")
    naps = [wf.add(f"n{i}", s.nap, x=i, params={"seconds": 0.6}, resources=NO_CPU) for i in range(4)]
    for i, n in enumerate(naps):
        wf.output(f"out{i}", n)
    run_ray(wf, None, settings)  # warm the workers
    # On a loaded two-core machine Ray may still be starting two of the four workers when the naps end (two at
    # once were seen at load 8): up to two more runs, with the workers the earlier ones left.
    overlap, result = 0, None
    for _ in range(3):
        result = run_ray(wf, None, settings)
        assert result.status is RunStatus.SUCCEEDED
        overlap = max(overlap, most_at_once(result, [f"n{i}" for i in range(4)]))
        if overlap >= 3:
            break
    assert overlap >= 3, f"the naps did not run in parallel: {result.nodes if result else None}"


def test_events_arrive_in_order_with_generator_outputs(settings: Settings) -> None:
    wf = Workflow("gen")
    wf.output("out", wf.add("g", s.steps, n=5))
    seen: list[Event] = []
    result = run_ray(wf, None, settings, on_event=seen.append)
    assert result.outputs == {"out": 5}
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert [e.payload["value"] for e in seen if e.type is EventType.NODE_OUTPUT] == [1, 2, 3, 4, 5]
    kinds = [e.type for e in seen if e.node == "g"]
    assert kinds[0] is EventType.NODE_STARTED and kinds[-1] is EventType.NODE_SUCCEEDED


def test_long_node_is_reported_running_while_it_runs(settings: Settings) -> None:
    wf = Workflow("long")
    wf.output("out", wf.add("z", s.nap, x=1, params={"seconds": 1.0}, resources=NO_CPU))
    handle = engine.submit(wf, None, settings=settings, executor=RayExecutor(), cache=False)
    seen_running_at = None
    for event in handle.events(poll_s=0.1):
        if event.type is EventType.NODE_STARTED and event.node == "z":
            seen_running_at = time.time()
    result = handle.result()
    finished = result.nodes["z"].finished_at
    assert seen_running_at is not None and finished is not None
    assert seen_running_at < finished - 0.5  # the live view learned it was running long before it ended


def test_coordinator_takes_a_drivers_priority_where_permitted(settings: Settings) -> None:
    # Where the process may (root or CAP_SYS_NICE), the coordinator submits like a driver (niceness 0), ahead
    # of the tasks it submitted; the tasks keep Ray's worker niceness. Elsewhere nothing changes.
    import ray

    executor = RayExecutor()
    wf = Workflow("nice")
    wf.output("out", wf.add("n", s.niceness, x=0))
    result = run_ray(wf, None, settings, executor=executor)
    task_niceness = result.outputs["out"]
    assert task_niceness > 0  # Ray's worker niceness (15 unless the cluster configures another)
    info = ray.get(executor.coordinator().process_info.remote())
    assert info["niceness"] == (0 if info["may_raise_priority"] else task_niceness)


def test_retries_on_ray(settings: Settings, tmp_path: Path) -> None:
    wf = Workflow("retry")
    wf.output("out", wf.add("f", s.flaky, x=3, params={"marker": str(tmp_path / "m"), "failures": 2}))
    result = run_ray(wf, None, settings)
    assert result.outputs == {"out": 3} and result.nodes["f"].attempts == 3


def test_failure_isolation_on_ray(settings: Settings) -> None:
    wf = Workflow("iso")
    bad = wf.add("bad", s.boom, x=1)
    wf.output("after", wf.add("after", s.double, x=bad))
    wf.output("good", wf.add("good", s.nap, x=2, params={"seconds": 0.2}, resources=NO_CPU))
    result = run_ray(wf, None, settings)
    assert result.status is RunStatus.FAILED
    assert result.nodes["good"].status is NodeStatus.SUCCEEDED
    assert (
        result.nodes["after"].error is not None and result.nodes["after"].error.type == "UpstreamFailedError"
    )
    assert result.nodes["bad"].error is not None and "boom on 1" in result.nodes["bad"].error.traceback


def test_timeout_cancels_the_task(settings: Settings) -> None:
    wf = Workflow("timeout")
    wf.output("out", wf.add("z", s.nap, x=1, params={"seconds": 30.0}, timeout_s=0.5, resources=NO_CPU))
    started = time.monotonic()
    result = run_ray(wf, None, settings)
    assert time.monotonic() - started < 5
    error = result.nodes["z"].error
    assert error is not None and error.type == "NodeTimeoutError"


def test_cancel_stops_running_and_queued_nodes(settings: Settings) -> None:
    wf = Workflow("cancel")
    first = wf.add("first", s.nap, x=1, params={"seconds": 30.0}, resources=NO_CPU)
    wf.output("out", wf.add("second", s.nap, x=first, params={"seconds": 30.0}, resources=NO_CPU))
    handle = engine.submit(wf, None, settings=settings, executor=RayExecutor(), cache=False)
    for event in handle.events():
        if event.type is EventType.NODE_STARTED:
            break
    started = time.monotonic()
    handle.cancel()
    result = handle.result(timeout=20)
    assert time.monotonic() - started < 10
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["first"].status is NodeStatus.CANCELLED
    assert result.nodes["second"].status is NodeStatus.CANCELLED


def test_fail_fast_cancels_the_rest_on_ray(settings: Settings) -> None:
    wf = Workflow("ff")
    wf.output("bad", wf.add("bad", s.boom, x=1))
    wf.output("slow", wf.add("slow", s.nap, x=2, params={"seconds": 30.0}, resources=NO_CPU))
    started = time.monotonic()
    result = run_ray(wf, None, settings, fail_fast=True)
    assert time.monotonic() - started < 10
    assert result.status is RunStatus.FAILED
    assert result.nodes["slow"].status is NodeStatus.CANCELLED


def test_map_and_skip_on_ray(settings: Settings) -> None:
    wf = Workflow("map_skip")
    items = wf.input("items", "List[Int]")
    flag = wf.input("flag", "Bool")
    squares = wf.add("m", "builtin/map@1", items=items, params={"workflow": square_doc()})
    branch = wf.add("branch", "builtin/if_else@1", cond=flag, value=squares)
    wf.output("taken", branch.true)
    wf.output("total", wf.add("total", "builtin/sum@1", values=branch.false))
    result = run_ray(wf, {"items": [1, 2, 3, 4], "flag": True}, settings, optimize=False)
    assert result.outputs["taken"] == [1, 4, 9, 16]
    assert result.nodes["total"].status is NodeStatus.SKIPPED
    assert result.nodes["m[3].sq"].status is NodeStatus.SUCCEEDED


def test_nested_map_and_fused_nodes_on_ray(settings: Settings) -> None:
    inner = {
        "format": "rayweave.workflow/1",
        "name": "row",
        "inputs": {"item": {"type": "List[Int]"}},
        "nodes": {
            "m": {
                "type": "builtin/map@1",
                "in": {"items": "$inputs.item"},
                "params": {"workflow": square_doc()},
            }
        },
        "outputs": {"out": "m.out"},
    }
    wf = Workflow("grid")
    items = wf.input("items", "List[List[Int]]")
    grid = wf.add("outer", "builtin/map@1", items=items, params={"workflow": inner})
    wf.output("grid", grid)
    # Two cheap nodes in a row: the optimizer fuses them into one task; each is still reported.
    first = wf.add("first", "builtin/add@1", a=1, b=2)
    wf.output("fused", wf.add("second", "builtin/multiply@1", a=first, b=10))
    result = run_ray(wf, {"items": [[1, 2], [3]]}, settings)
    assert result.outputs == {"grid": [[1, 4], [9]], "fused": 30}
    assert result.nodes["outer[0].m[1].sq"].status is NodeStatus.SUCCEEDED
    assert result.nodes["first"].status is result.nodes["second"].status is NodeStatus.SUCCEEDED


def test_circuit_breaker_is_shared_across_runs(settings: Settings) -> None:
    import ray

    actor = find_actor(BREAKER_ACTOR_NAME)
    if actor is not None:
        ray.get(actor.reset.remote("test-service"))
    wf = Workflow("svc")
    wf.output("out", wf.add("call", s.service, x=1))
    errors: list[str] = []
    for _ in range(6):  # the default policy opens after 5 failures
        result = run_ray(wf, None, settings, executor=RayExecutor(breaker_policy=BreakerPolicy()))
        err = result.nodes["call"].error
        assert err is not None
        errors.append(err.type)
    assert errors[:5] == ["ConnectionError"] * 5
    assert errors[5] == "CircuitOpenError"
    actor = find_actor(BREAKER_ACTOR_NAME)
    assert actor is not None
    state = str(ray.get(actor.state.remote("test-service")))  # a str; ray.get is typed for lists here
    assert state == "open"
    ray.get(actor.reset.remote("test-service"))


def test_class_node_actor_is_reused_within_a_run(settings: Settings) -> None:
    wf = Workflow("cls")
    first = wf.add("first", s.Scaler, x=1)
    wf.output("out", wf.add("second", s.Scaler, x=first))
    result = run_ray(wf, None, settings)
    assert result.outputs == {"out": 101}


def test_fully_cached_rerun_touches_no_worker(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / f"runs-{uuid.uuid4().hex}"
    wf = Workflow("cached")
    x = wf.input("x", "Int")
    a = wf.add("a", s.counted, x=x, params={"marker": str(marker)})
    wf.output("out", wf.add("b", s.double, x=a))
    first = engine.run(wf, {"x": 5}, settings=settings, executor=RayExecutor())
    assert first.outputs == {"out": 10} and marker.read_text().count("run") == 1
    seen: list[Event] = []
    started = time.perf_counter()
    # A fresh executor: the rerun is answered from the durable cache without a coordinator or worker.
    again = engine.run(wf, {"x": 5}, settings=settings, executor=RayExecutor(), on_event=seen.append)
    elapsed = time.perf_counter() - started
    assert again.outputs == {"out": 10}
    assert marker.read_text().count("run") == 1
    assert {e.type for e in seen if e.node} == {EventType.NODE_CACHED}
    assert again.nodes["b"].status is NodeStatus.CACHED
    assert elapsed < 0.5
