"""Execution semantics on the in-process executor (the Ray executor shares the task wrapper and bookkeeping)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.errors import WorkflowInputError
from engine.execution.breaker import BreakerPolicy, CircuitBreakers
from engine.execution.events import Event
from engine.execution.inprocess import InProcessExecutor
from engine.workflow import Workflow
from nodes import RetryPolicy
from nodes.states import EventType, NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s


def run_local(wf: Workflow, inputs: dict[str, Any] | None, settings: Settings, **kw: Any) -> engine.RunResult:
    kw.setdefault("cache", False)
    kw.setdefault("executor", "local")
    return engine.run(wf, inputs, settings=settings, **kw)


def chain() -> Workflow:
    wf = Workflow("chain")
    x = wf.input("x", "Int")
    a = wf.add("a", s.add, a=x, b=2)
    b = wf.add("b", s.double, x=a)
    wf.output("result", b)
    return wf


def test_chain_outputs_and_ordered_events(settings: Settings) -> None:
    seen: list[Event] = []
    result = run_local(chain(), {"x": 1}, settings, on_event=seen.append)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"result": 6}
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    types = [(e.type, e.node) for e in seen]
    assert types[0] == (EventType.RUN_QUEUED, None) and types[-1] == (EventType.RUN_SUCCEEDED, None)
    assert types.index((EventType.NODE_STARTED, "a")) < types.index((EventType.NODE_SUCCEEDED, "a"))
    assert types.index((EventType.NODE_SUCCEEDED, "a")) < types.index((EventType.NODE_STARTED, "b"))
    assert {n: r.status for n, r in result.nodes.items()} == {
        "a": NodeStatus.SUCCEEDED,
        "b": NodeStatus.SUCCEEDED,
    }
    assert result.nodes["a"].attempts == 1 and result.nodes["a"].duration_s is not None


def test_failure_fails_dependents_while_independent_branch_finishes(settings: Settings) -> None:
    wf = Workflow("branches")
    bad = wf.add("bad", s.boom, x=1)
    good = wf.add("good", s.double, x=4)
    wf.output("bad", bad)
    wf.output("good", good)
    result = run_local(wf, None, settings)
    assert result.status is RunStatus.FAILED
    assert result.nodes["good"].status is NodeStatus.SUCCEEDED
    error = result.nodes["bad"].error
    assert error is not None
    assert (error.node, error.attempt, error.type) == ("bad", 1, "ValueError")
    assert "boom on 1" in error.message and "raise ValueError" in error.traceback
    assert result.outputs == {}


def test_dependent_of_failed_node_fails_naming_the_upstream(settings: Settings) -> None:
    wf = Workflow("dep")
    bad = wf.add("bad", s.boom, x=1)
    wf.output("out", wf.add("after", s.double, x=bad))
    result = run_local(wf, None, settings)
    after = result.nodes["after"]
    assert after.status is NodeStatus.FAILED and after.error is not None
    assert after.error.type == "UpstreamFailedError" and "'bad'" in after.error.message


def test_fail_fast_cancels_the_rest(settings: Settings) -> None:
    wf = Workflow("ff")
    bad = wf.add("bad", s.boom, x=1)
    later = wf.add("later", s.nap, x=2, params={"seconds": 0.01})
    wf.output("bad", bad)
    wf.output("later", later)
    result = run_local(wf, None, settings, fail_fast=True)
    assert result.status is RunStatus.FAILED
    assert result.nodes["later"].status is NodeStatus.CANCELLED


def test_retries_until_success_with_a_retrying_event_per_retry(settings: Settings, tmp_path: Path) -> None:
    wf = Workflow("retry")
    wf.output("out", wf.add("f", s.flaky, x=7, params={"marker": str(tmp_path / "m"), "failures": 2}))
    seen: list[Event] = []
    result = run_local(wf, None, settings, on_event=seen.append)
    assert result.outputs == {"out": 7}
    assert result.nodes["f"].attempts == 3
    retrying = [e for e in seen if e.type is EventType.NODE_RETRYING]
    assert [e.attempt for e in retrying] == [2, 3]
    assert retrying[0].payload["error"] == "ConnectionError"


def test_retries_give_up_after_max_attempts(settings: Settings, tmp_path: Path) -> None:
    wf = Workflow("retry")
    wf.output("out", wf.add("f", s.flaky, x=7, params={"marker": str(tmp_path / "m"), "failures": 5}))
    result = run_local(wf, None, settings)
    node = result.nodes["f"]
    assert node.status is NodeStatus.FAILED and node.attempts == 3
    assert node.error is not None and node.error.attempt == 3


def test_retry_on_only_retries_listed_exceptions(settings: Settings, tmp_path: Path) -> None:
    wf = Workflow("retry_on")
    policy = RetryPolicy(max_attempts=4, initial_s=0.0, retry_on=("KeyError",))
    wf.output("out", wf.add("f", s.flaky, x=1, params={"marker": str(tmp_path / "m")}, retry=policy))
    result = run_local(wf, None, settings)
    assert result.nodes["f"].attempts == 1  # ConnectionError is not a KeyError
    assert result.status is RunStatus.FAILED


def test_output_type_error_names_workflow_node_port_and_types(settings: Settings) -> None:
    wf = Workflow("typed")
    wf.output("out", wf.add("liar", s.wrong_type, x=1))
    result = run_local(wf, None, settings)
    error = result.nodes["liar"].error
    assert error is not None and error.type == "PortTypeError"
    for part in ("'typed'", "'liar'", "'out'", "Int", "str"):
        assert part in error.message


def test_branch_skips_untaken_side_and_merge_takes_the_value(settings: Settings) -> None:
    wf = Workflow("branch")
    flag = wf.input("flag", "Bool")
    branch = wf.add("branch", "builtin/if_else@1", cond=flag, value=5)
    yes = wf.add("yes", s.double, x=branch.true)
    no = wf.add("no", s.add, a=branch.false, b=100)
    merged = wf.add("merged", "builtin/merge@1", a=yes, b=no)
    wf.output("out", merged)
    taken = run_local(wf, {"flag": True}, settings, optimize=False)
    assert taken.outputs == {"out": 10}
    assert taken.nodes["no"].status is NodeStatus.SKIPPED
    other = run_local(wf, {"flag": False}, settings, optimize=False)
    assert other.outputs == {"out": 105}
    assert other.nodes["yes"].status is NodeStatus.SKIPPED


def test_generator_streams_partial_outputs_and_progress(settings: Settings) -> None:
    wf = Workflow("gen")
    wf.output("out", wf.add("g", s.steps, n=3))
    seen: list[Event] = []
    result = run_local(wf, None, settings, on_event=seen.append)
    assert result.outputs == {"out": 3}
    outputs = [e.payload["value"] for e in seen if e.type is EventType.NODE_OUTPUT]
    assert outputs == [1, 2, 3]
    assert [e.payload["fraction"] for e in seen if e.type is EventType.NODE_PROGRESS][-1] == 1.0
    done = next(i for i, e in enumerate(seen) if e.type is EventType.NODE_SUCCEEDED)
    assert all(i < done for i, e in enumerate(seen) if e.type is EventType.NODE_OUTPUT)


def test_node_logs_become_events(settings: Settings) -> None:
    wf = Workflow("log")
    wf.output("out", wf.add("c", s.chatty, x=4))
    seen: list[Event] = []
    run_local(wf, None, settings, on_event=seen.append)
    logs = [e for e in seen if e.type is EventType.NODE_LOG]
    assert logs and logs[0].payload["message"] == "hello from 4" and logs[0].node == "c"


def square_doc() -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "square",
        "inputs": {"item": {"type": "Int"}},
        "nodes": {"sq": {"type": "builtin/multiply@1", "in": {"a": "$inputs.item", "b": "$inputs.item"}}},
        "outputs": {"out": "sq.out"},
    }


def test_map_runs_the_subworkflow_per_element_in_order(settings: Settings) -> None:
    wf = Workflow("squares")
    items = wf.input("items", "List[Int]")
    wf.output("out", wf.add("m", "builtin/map@1", items=items, params={"workflow": square_doc()}))
    result = run_local(wf, {"items": [3, 1, 2]}, settings)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"out": [9, 1, 4]}
    assert result.nodes["m[0].sq"].status is NodeStatus.SUCCEEDED


def test_nested_map(settings: Settings) -> None:
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
    wf.output("out", wf.add("outer", "builtin/map@1", items=items, params={"workflow": inner}))
    result = run_local(wf, {"items": [[1, 2], [3]]}, settings)
    assert result.outputs == {"out": [[1, 4], [9]]}


def test_timeout_fails_the_node(settings: Settings) -> None:
    wf = Workflow("slow")
    wf.output("out", wf.add("z", s.nap, x=1, params={"seconds": 2.0}, timeout_s=0.2))
    started = time.monotonic()
    result = run_local(wf, None, settings)
    assert time.monotonic() - started < 1.5
    error = result.nodes["z"].error
    assert error is not None and error.type == "NodeTimeoutError" and "0.2 s" in error.message


def test_circuit_breaker_opens_and_fails_fast(settings: Settings) -> None:
    breakers = CircuitBreakers(BreakerPolicy(failure_threshold=2, window_s=60, open_s=60))
    executor = InProcessExecutor(breakers=breakers)
    wf = Workflow("svc")
    wf.output("out", wf.add("call", s.service, x=1))
    for _ in range(2):
        result = run_local(wf, None, settings, executor=executor)
        assert result.nodes["call"].error is not None
        assert result.nodes["call"].error.type == "ConnectionError"
    assert breakers.state("test-service") == "open"
    result = run_local(wf, None, settings, executor=executor)
    error = result.nodes["call"].error
    assert error is not None and error.type == "CircuitOpenError" and "test-service" in error.message


def test_class_node_is_set_up_once_per_run(settings: Settings) -> None:
    wf = Workflow("cls")
    first = wf.add("first", s.Scaler, x=1)
    wf.output("out", wf.add("second", s.Scaler, x=first))
    result = run_local(wf, None, settings)
    # One instance serves both nodes: the second call sees calls == 1.
    assert result.outputs == {"out": 101}


def test_events_resume_after_a_sequence_number(settings: Settings) -> None:
    handle = engine.submit(chain(), {"x": 1}, settings=settings, executor="local", cache=False)
    all_events = list(handle.events())
    resumed = list(handle.events(after=3))
    assert [e.seq for e in resumed] == [e.seq for e in all_events[3:]]
    assert handle.result().ok


def test_events_async_iteration(settings: Settings) -> None:
    handle = engine.submit(chain(), {"x": 1}, settings=settings, executor="local", cache=False)

    async def collect() -> list[str]:
        return [str(e.type) async for e in handle.events()]

    types = asyncio.run(collect())
    assert types[0] == "run.queued" and types[-1] == "run.succeeded"


def test_cancel_stops_before_the_next_node(settings: Settings) -> None:
    wf = Workflow("cancel")
    first = wf.add("first", s.nap, x=1, params={"seconds": 0.5})
    wf.output("out", wf.add("second", s.nap, x=first, params={"seconds": 0.5}))
    handle = engine.submit(wf, None, settings=settings, executor="local", cache=False)
    threading.Timer(0.1, handle.cancel).start()
    result = handle.result()
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["second"].status is NodeStatus.CANCELLED


def test_missing_and_mistyped_inputs_are_rejected(settings: Settings) -> None:
    with pytest.raises(WorkflowInputError, match="needs input 'x'"):
        run_local(chain(), {}, settings)
    with pytest.raises(WorkflowInputError, match="expects Int"):
        run_local(chain(), {"x": "three"}, settings)


def test_event_sink_receives_every_event_in_order(settings: Settings) -> None:
    class ListSink:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def write(self, events: Any) -> None:
            self.events.extend(events)

    sink = ListSink()
    seen: list[Event] = []
    run_local(chain(), {"x": 1}, settings, sink=sink, on_event=seen.append)
    assert [e.seq for e in sink.events] == [e.seq for e in seen] == list(range(1, len(seen) + 1))


def test_fused_chain_reports_each_member(settings: Settings) -> None:
    wf = Workflow("fused")
    a = wf.add("a", "builtin/add@1", a=1, b=2)
    b = wf.add("b", "builtin/multiply@1", a=a, b=10)
    wf.output("out", b)
    result = run_local(wf, None, settings, optimize=True)
    assert result.outputs == {"out": 30}
    assert {n: r.status for n, r in result.nodes.items()} == {
        "a": NodeStatus.SUCCEEDED,
        "b": NodeStatus.SUCCEEDED,
    }
