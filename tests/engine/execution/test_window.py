"""The coordinator's window: at most `max_in_flight` tasks of a run are submitted to Ray at once; the other
ready nodes wait in the coordinator, in plan order, and go as tasks end (or are cancelled with the run)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.states import EventType, NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s
from tests.engine.execution.test_inprocess import square_doc

pytestmark = pytest.mark.usefixtures("ray_session")

#: Sleeping nodes that need no CPU: without the window Ray would run them all at once.
NO_CPU = {"num_cpus": 0}


def run_windowed(
    wf: Workflow, inputs: dict[str, Any] | None, settings: Settings, window: int, **kw: Any
) -> Any:
    kw.setdefault("cache", False)
    return engine.run(wf, inputs, settings=settings, executor=RayExecutor(max_in_flight=window), **kw)


def most_at_once(result: engine.RunResult, nodes: list[str]) -> int:
    """The most of `nodes` that ran at the same moment (from their own start and end times)."""
    spans = [(result.nodes[n].started_at, result.nodes[n].finished_at) for n in nodes]
    assert all(start is not None and end is not None for start, end in spans), spans
    return max(sum(1 for s0, f0 in spans if s0 <= t < f0) for t, _ in spans)


def test_no_more_tasks_than_the_window_run_at_once(settings: Settings) -> None:
    wf = Workflow("windowed")
    naps = [wf.add(f"n{i}", s.nap, x=i, params={"seconds": 0.6}, resources=NO_CPU) for i in range(8)]
    wf.output("total", wf.add("total", s.total, xs=naps))
    names = [f"n{i}" for i in range(8)]
    run_windowed(wf, None, settings, window=4096)  # warm the workers
    # With room, the naps overlap: the check below can see overlap (on a loaded machine Ray may start workers
    # for the naps slowly: a clean-clone run at load 30 saw only 2 overlap in two wide runs of 0.3 s naps, so
    # the naps are 0.6 s and up to three wide runs are allowed).
    overlap = 0
    for _ in range(3):
        overlap = most_at_once(run_windowed(wf, None, settings, window=4096), names)
        if overlap >= 3:
            break
    assert overlap >= 3
    result = run_windowed(wf, None, settings, window=2)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"total": sum(range(8))}
    assert most_at_once(result, names) <= 2


def test_queued_nodes_keep_their_dependencies_maps_and_lists(settings: Settings) -> None:
    # A window of one task: every node waits for the one before it, through chains, a map's elements, a
    # list binding and a node that waits for the map.
    wf = Workflow("narrow")
    items = wf.input("items", "List[Int]")
    a = wf.add("a", s.add, a=1, b=2)
    b = wf.add("b", s.double, x=a)
    squares = wf.add("m", "builtin/map@1", items=items, params={"workflow": square_doc()})
    adds = [wf.add(f"p{i}", s.add, a=i, b=b) for i in range(5)]
    wf.output("b", b)
    wf.output("squares", squares)
    wf.output("sum", wf.add("sum", s.total, xs=adds))
    wf.output("after_map", wf.add("after", "builtin/sum@1", values=squares))
    result = run_windowed(wf, {"items": [1, 2, 3]}, settings, window=1, optimize=False)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert result.outputs == {
        "b": 6,
        "squares": [1, 4, 9],
        "sum": sum(i + 6 for i in range(5)),
        "after_map": 14,
    }
    assert all(r.status is NodeStatus.SUCCEEDED for r in result.nodes.values())


def test_cancel_cancels_queued_nodes_without_running_them(settings: Settings) -> None:
    wf = Workflow("cancel_queued")
    for i in range(3):
        wf.output(f"n{i}", wf.add(f"n{i}", s.nap, x=i, params={"seconds": 30.0}, resources=NO_CPU))
    handle = engine.submit(wf, None, settings=settings, executor=RayExecutor(max_in_flight=1), cache=False)
    for event in handle.events():
        if event.type is EventType.NODE_STARTED:
            break
    time.sleep(1.0)  # without the window, the other naps would have started (and said so) by now
    started = time.monotonic()
    handle.cancel()
    result = handle.result(timeout=20)
    assert time.monotonic() - started < 10
    assert result.status is RunStatus.CANCELLED
    assert {r.status for r in result.nodes.values()} == {NodeStatus.CANCELLED}
    ran = [n for n, r in result.nodes.items() if r.started_at is not None]
    assert len(ran) == 1, ran  # the two queued naps were never submitted


def test_fail_fast_cancels_queued_nodes(settings: Settings) -> None:
    wf = Workflow("ff_queued")
    wf.output("bad", wf.add("bad", s.boom, x=1))
    for i in range(3):
        wf.output(f"n{i}", wf.add(f"n{i}", s.nap, x=i, params={"seconds": 30.0}, resources=NO_CPU))
    started = time.monotonic()
    result = run_windowed(wf, None, settings, window=1, fail_fast=True)
    assert time.monotonic() - started < 10
    assert result.status is RunStatus.FAILED
    assert result.nodes["bad"].status is NodeStatus.FAILED
    assert all(result.nodes[f"n{i}"].status is NodeStatus.CANCELLED for i in range(3))


def test_the_installations_setting_bounds_plain_and_durable_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.durable import DurableRunner

    monkeypatch.setenv("RAYWEAVE_MAX_TASKS_IN_FLIGHT", "2")
    narrow = Settings(home=settings.home)
    assert narrow.max_tasks_in_flight == 2
    wf = Workflow("windowed_by_settings")
    naps = [wf.add(f"n{i}", s.nap, x=i, params={"seconds": 0.3}, resources=NO_CPU) for i in range(6)]
    wf.output("total", wf.add("total", s.total, xs=naps))
    names = [f"n{i}" for i in range(6)]
    plain = engine.run(wf, None, settings=narrow, cache=False)  # the default executor, made from settings
    assert plain.outputs == {"total": 15} and most_at_once(plain, names) <= 2
    durable = DurableRunner(narrow, heartbeat_s=0.2).run(wf, timeout=60)
    assert durable.outputs == {"total": 15} and most_at_once(durable, names) <= 2
