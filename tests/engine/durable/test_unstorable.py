"""What a node emits that the store cannot hold as it is (issue 16): a durable run always ends, on SQLite and on
PostgreSQL (which refuses NUL characters), and everything recorded about it reads back.

A workflow output that breaks the JSON limits (`engine.jsonlimits`) fails its node with `UnstorableOutputError`
naming node, port and output; error messages and log lines are stored with U+FFFD in place of what cannot be.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, StoreEventSink
from engine.execution.events import Event
from engine.jsonlimits import REPLACEMENT
from engine.store import Store
from engine.workflow import Workflow
from nodes.states import EventType, RunStatus
from tests.engine.durable import flows


@pytest.fixture
def runner(settings: Settings, any_store: Store) -> DurableRunner:
    """A durable runner on the in-process executor, on SQLite and on PostgreSQL."""
    return DurableRunner(settings, store=any_store, executor="local", heartbeat_s=0.1)


def _events(store: Store, run_id: str) -> list[Any]:
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "an event was lost"
    return events


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("nul", "NUL character"),
        ("surrogate", "lone UTF-16 surrogate"),
        ("deep", "nests deeper than 64 levels"),
        ("nan", "is not a JSON number"),
    ],
)
def test_an_output_the_store_cannot_hold_fails_its_node_naming_the_port(
    runner: DurableRunner, kind: str, problem: str
) -> None:
    wf = Workflow("unstorable")
    wf.output("value", wf.add("make", flows.unstorable, params={"kind": kind}))
    result = runner.run(wf, timeout=30)
    assert result.status is RunStatus.FAILED
    error = result.nodes["make"].error
    assert error is not None and error.type == "UnstorableOutputError"
    assert "workflow output 'value' (node 'make', port 'out') cannot be stored: value[1]" in error.message
    assert problem in error.message

    store = runner.store
    run = store.runs.get(result.run_id)
    assert (run.status, run.outputs, (run.error or {}).get("failed_nodes")) == ("failed", None, ["make"])
    [row] = store.node_runs.list(result.run_id)
    assert row.status == "failed" and problem in (row.error or {}).get("message", "")
    assert not runner.results.exists(result.run_id, "make"), "a refused value is not written"
    assert _events(store, result.run_id)[-1].type == "run.failed"


def test_error_messages_and_log_lines_are_stored_cleaned(runner: DurableRunner) -> None:
    wf = Workflow("noisy")
    wf.output("out", wf.add("noisy", flows.noisy_failure, x=wf.input("x", "Int")))
    result = runner.run(wf, {"x": 3}, timeout=30)
    assert result.status is RunStatus.FAILED

    store = runner.store
    assert store.runs.get(result.run_id).status == "failed"
    [row] = store.node_runs.list(result.run_id)
    message = (row.error or {}).get("message", "")
    assert f"bad {REPLACEMENT} value {REPLACEMENT} (3)" in message
    assert "\x00" not in str(row.error) and "\ud800" not in str(row.error)
    events = _events(store, result.run_id)
    [log] = [e for e in events if e.type == "node.log"]
    assert log.payload["message"] == f"line {REPLACEMENT} with {REPLACEMENT} in it"
    [failed] = [e for e in events if e.type == "node.failed"]
    assert f"bad {REPLACEMENT} value" in failed.payload["error"]["message"]
    assert events[-1].type == "run.failed"


def test_an_output_within_the_limits_is_stored_as_it_is(runner: DurableRunner) -> None:
    wf = Workflow("storable")
    wf.output("value", wf.add("make", flows.unstorable, params={"kind": "fine"}))
    result = runner.run(wf, timeout=30)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"value": ["fine", 1]}
    assert runner.store.runs.get(result.run_id).outputs == {"value": ["fine", 1]}


def test_the_sink_fails_a_run_whose_outputs_it_cannot_hold(runner: DurableRunner) -> None:
    # An output no task checked (a cache hit, a map node's): the run's success is recorded as its failure,
    # naming the output, node and port, in the run row and in the event log alike.
    store = runner.store
    document = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {"value": "make.out"}}
    run_id = store.runs.create(document=document, heartbeat=True).run.id
    runner.results.put(run_id, "make", {"out": ["fine", "a\x00b"]})
    sink = StoreEventSink(runner.database_url, run_id, results=runner.results, heartbeat_s=0)
    sink.write(
        [
            Event(run_id, 1, EventType.RUN_STARTED, time=time.time()),
            Event(run_id, 2, EventType.RUN_SUCCEEDED, time=time.time(), payload={"failed_nodes": []}),
        ]
    )
    run = store.runs.get(run_id)
    assert run.status == "failed" and run.outputs is None
    reason = (run.error or {}).get("reason", "")
    assert "workflow output 'value' (node 'make', port 'out') cannot be stored: value[1]" in reason
    assert (run.error or {}).get("failed_nodes") == ["make"]
    events = _events(store, run_id)
    assert [e.type for e in events] == ["run.started", "run.failed"]
    assert events[-1].payload["reason"] == reason
