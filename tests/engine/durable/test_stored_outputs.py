"""Every output of a durable run is stored (a data-loss defect found while fixing issue 16).

A durable run reads its outputs back from the result store at its end, and map nodes were never written there:
every durable run (the API's, `rayweave run`'s) ended `succeeded` without an output that came from a map. Now a
top-level map node's list is written before its success is recorded, on both executors, and a run whose output
has no stored value at its end fails naming it instead of succeeding without it. That check found two more
outputs that were never stored: a node answered by a cache lookup inside its task, and a defaulted input.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, StoreEventSink, recover
from engine.durable.results import ResultStore
from engine.durable.stored import read_outputs
from engine.execution.events import Event
from engine.store import Store
from engine.workflow import Workflow
from nodes.states import EventType, RunStatus
from tests.engine.durable import flows
from tests.engine.durable.crash import simulate_crash
from tests.engine.durable.flows import executions, map_then_total

SQUARES = {"squares": [1, 4, 9], "total": 14}


@pytest.fixture
def runner(settings: Settings, any_store: Store) -> DurableRunner:
    """A durable runner on the in-process executor, on SQLite and on PostgreSQL."""
    return DurableRunner(settings, store=any_store, executor="local", heartbeat_s=0.1)


def _check_stored(runner: DurableRunner, run_id: str, outputs: dict[str, Any]) -> None:
    """What everyone but the live handle reads: the run row, the result store, a handle from the store."""
    store = runner.store
    run = store.runs.get(run_id)
    assert (run.status, run.outputs, run.skipped_outputs or []) == ("succeeded", outputs, [])
    assert read_outputs(store, runner.results, run_id).values == outputs
    assert runner.attach(run_id).result(timeout=5).outputs == outputs
    assert store.node_runs.latest(run_id)["m"].result_location == runner.results.location(run_id, "m")


def _unstorable_map() -> Workflow:
    """A map whose list holds a NUL character (its sub-workflow returns each element as it is)."""
    identity = {
        "format": "rayweave.workflow/1",
        "name": "identity",
        "inputs": {"item": {"type": "String"}},
        "nodes": {},
        "outputs": {"out": "$inputs.item"},
    }
    wf = Workflow("unstorable-map")
    made = wf.add("make", flows.texts_with_nul)
    wf.output("value", wf.add("m", "builtin/map@1", items=made, params={"workflow": identity}))
    return wf


def _check_unstorable(runner: DurableRunner, result: Any) -> None:
    assert result.status is RunStatus.FAILED
    error = result.nodes["m"].error
    assert error is not None and error.type == "UnstorableOutputError"
    assert "workflow output 'value' (node 'm', port 'out') cannot be stored: value[1]" in error.message
    run = runner.store.runs.get(result.run_id)
    assert (run.status, run.outputs, (run.error or {}).get("failed_nodes")) == ("failed", None, ["m"])
    assert not runner.results.exists(result.run_id, "m"), "a refused list is not written"


def test_a_durable_run_keeps_the_output_of_a_map(runner: DurableRunner, log: Path) -> None:
    result = runner.run(map_then_total(log), {"items": [1, 2, 3]}, timeout=30)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == SQUARES
    _check_stored(runner, result.run_id, SQUARES)


def test_a_map_list_the_store_cannot_hold_fails_the_map_node(runner: DurableRunner) -> None:
    _check_unstorable(runner, runner.run(_unstorable_map(), timeout=30))


@pytest.mark.usefixtures("ray_session")
def test_a_durable_run_on_ray_keeps_the_output_of_a_map(settings: Settings, store: Store, log: Path) -> None:
    runner = DurableRunner(settings, store=store, heartbeat_s=0.5)
    result = runner.run(map_then_total(log), {"items": [1, 2, 3]}, timeout=60)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == SQUARES
    _check_stored(runner, result.run_id, SQUARES)
    # The list the store cannot hold fails the map node on Ray too (the task that assembles it checks it).
    _check_unstorable(runner, runner.run(_unstorable_map(), timeout=60))


def test_a_cached_rerun_of_a_map_keeps_its_output(settings: Settings, any_store: Store, log: Path) -> None:
    DurableRunner(settings, store=any_store, executor="local", cache=True).run(
        map_then_total(log), {"items": [1, 2, 3]}
    )
    runner = DurableRunner(settings, store=any_store, executor="local", cache=True)  # as in a new process
    again = runner.run(map_then_total(log), {"items": [1, 2, 3]}, timeout=30)
    assert again.status is RunStatus.SUCCEEDED and again.outputs == SQUARES
    assert {r.status for r in any_store.node_runs.list(again.run_id)} == {"cached"}, "a node ran again"
    run = any_store.runs.get(again.run_id)
    assert (run.status, run.outputs) == ("succeeded", SQUARES)


@pytest.mark.parametrize(
    ("running", "later", "keep_result", "map_again"),
    [
        ("t", (), False, False),  # the map had finished: it is taken from the result store
        ("m", ("t",), True, False),  # its list was written, its success not recorded: it had succeeded
        ("m", ("t",), False, True),  # interrupted midway: it runs again as a whole
    ],
    ids=["after-the-map", "map-written", "map-interrupted"],
)
def test_a_resumed_run_gives_the_output_of_a_map(
    runner: DurableRunner, log: Path, running: str, later: tuple[str, ...], keep_result: bool, map_again: bool
) -> None:
    store = runner.store
    run_id = runner.run(map_then_total(log), {"items": [1, 2, 3]}, timeout=30).run_id
    simulate_crash(store, runner.results, run_id, running=running, later=later, keep_result=keep_result)

    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    result = handles[run_id].result(timeout=30)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == SQUARES
    _check_stored(runner, run_id, SQUARES)
    assert executions(log) == {"t": 2}
    element_attempts = [r.attempt for r in store.node_runs.list(run_id) if r.node_id == "m[0].sq"]
    assert element_attempts == ([1, 2] if map_again else [1])
    assert store.node_runs.latest(run_id)["m"].status == "succeeded"


class _LosingResults(ResultStore):
    """A result store that loses what node `lost` writes: the defect class the end-of-run check catches."""

    lost = "sum"

    def put(self, run_id: str, node_id: str, outputs: Any) -> str:
        if node_id == self.lost:
            return self.location(run_id, node_id)
        return super().put(run_id, node_id, outputs)


def test_a_run_whose_output_has_no_stored_value_fails_naming_it(
    settings: Settings, any_store: Store, tmp_path: Path
) -> None:
    doc = {
        "format": "rayweave.workflow/1",
        "name": "lossy",
        "inputs": {"a": {"type": "Int"}},
        "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": {"value": 1}}}},
        "outputs": {"total": "sum"},
    }
    runner = DurableRunner(
        settings, store=any_store, results=_LosingResults(tmp_path / "results"), executor="local"
    )
    result = runner.run(doc, {"a": 1}, timeout=30)
    # The handle says what the store says: failed, not succeeded without the output.
    assert result.status is RunStatus.FAILED and result.outputs == {}
    run = any_store.runs.get(result.run_id)
    reason = (run.error or {}).get("reason", "")
    assert run.status == "failed" and run.outputs is None
    assert "workflow output 'total' (node 'sum') has no stored value" in reason
    assert (run.error or {}).get("failed_nodes") == ["sum"]
    events = any_store.events.read(result.run_id)
    assert events[-1].type == "run.failed" and events[-1].payload["reason"] == reason


def test_the_sink_requires_only_the_outputs_the_run_computes(runner: DurableRunner) -> None:
    store = runner.store
    document = {
        "format": "rayweave.workflow/1",
        "name": "w",
        "nodes": {},
        "outputs": {"value": "make.out", "other": "elsewhere.out"},
    }

    def finish(outputs: tuple[str, ...] | None) -> Any:
        run_id = store.runs.create(document=document, heartbeat=True).run.id
        runner.results.put(run_id, "make", {"out": 7})
        sink = StoreEventSink(
            runner.database_url, run_id, results=runner.results, heartbeat_s=0, outputs=outputs
        )
        sink.write(
            [
                Event(run_id, 1, EventType.RUN_STARTED, time=time.time()),
                Event(run_id, 2, EventType.RUN_SUCCEEDED, time=time.time(), payload={"failed_nodes": []}),
            ]
        )
        return store.runs.get(run_id)

    # Asked for `value` only (`launch(outputs=["value"])`): `other` was never computed, and is not missing.
    requested = finish(("value",))
    assert (requested.status, requested.outputs) == ("succeeded", {"value": 7})
    # Without the list, every output of the document must have a value.
    every = finish(None)
    assert every.status == "failed" and (every.error or {}).get("failed_nodes") == ["elsewhere"]
    assert (
        "workflow output 'other' (node 'elsewhere', port 'out') has no stored value" in every.error["reason"]
    )


def test_an_output_answered_by_a_cache_lookup_in_its_task_is_stored(
    settings: Settings, any_store: Store, log: Path
) -> None:
    # `s` follows a node that is not deterministic: its key is made in its task, from its input's content.
    runner = DurableRunner(settings, store=any_store, executor="local", cache=True)
    runner.run(flows.read_then_square(log), {"x": 4}, timeout=30)
    again = runner.run(flows.read_then_square(log), {"x": 4}, timeout=30)
    assert again.status is RunStatus.SUCCEEDED and again.nodes["s"].status.value == "cached"
    assert executions(log) == {"r": 2, "s": 1}
    run = any_store.runs.get(again.run_id)
    assert (run.status, run.outputs) == ("succeeded", {"out": 16})


def test_an_output_reading_a_defaulted_input_is_stored(runner: DurableRunner) -> None:
    doc = {
        "format": "rayweave.workflow/1",
        "name": "echo",
        "inputs": {"x": {"type": "Int", "default": 4}},
        "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.x", "b": "$inputs.x"}}},
        "outputs": {"total": "sum", "x": "$inputs.x"},
    }
    result = runner.run(doc, {}, timeout=30)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"total": 8, "x": 4}
    run = runner.store.runs.get(result.run_id)
    assert (run.status, run.outputs) == ("succeeded", {"total": 8, "x": 4})


def _twins() -> dict[str, Any]:
    """Two identical nodes (same type, inputs and params): the compiler runs one and merges the other into it."""
    nap = {"type": "builtin/sleep@1", "in": {"value": "$inputs.x"}, "params": {"seconds": 0.01}}
    return {
        "format": "rayweave.workflow/1",
        "name": "twins",
        "inputs": {"x": {"type": "Int"}},
        "nodes": {"first": nap, "second": dict(nap)},
        "outputs": {"a": "first.out", "b": "second.out"},
    }


def test_an_output_of_a_node_merged_into_its_twin_is_stored(runner: DurableRunner) -> None:
    # Found in use: the merged node has no result of its own, and every such run failed as a defect.
    result = runner.run(_twins(), {"x": 7}, timeout=30)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert result.outputs == {"a": 7, "b": 7}
    run = runner.store.runs.get(result.run_id)
    assert (run.status, run.outputs) == ("succeeded", {"a": 7, "b": 7})
    assert read_outputs(runner.store, runner.results, result.run_id).values == {"a": 7, "b": 7}
