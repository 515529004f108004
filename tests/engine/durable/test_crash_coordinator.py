"""Crash test (1): the run coordinator actor is killed mid-run; a recovery sweep resumes the run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.actors import find_actor
from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.execution.ray.coordinator import COORDINATOR_NAME
from engine.store import Store
from nodes.states import RunStatus
from tests.engine.durable.flows import chain, executions

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_coordinator_run_is_resumed_without_rerunning_finished_nodes(
    settings: Settings, store: Store, log: Path
) -> None:
    import ray

    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    handle = runner.submit(chain(log, seconds=3.0, slow="b"), {"x": 1})
    run_id = handle.run_id
    wait_for(lambda: store.node_runs.latest(run_id).get("b") is not None, what="node b to start")
    assert executions(log) == {"a": 1}

    ray.kill(find_actor(COORDINATOR_NAME))

    handles: dict[str, Any] = {}
    wait_for(
        lambda: recover(runner=runner, stale_after_s=1.0, handles=handles) == [run_id], what="the resume"
    )
    result = handles[run_id].result(timeout=60)

    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert store.runs.get(run_id).status == "succeeded"
    attempts = [(r.node_id, r.attempt, r.status) for r in store.node_runs.list(run_id)]
    assert attempts == [
        ("a", 1, "succeeded"),
        ("b", 1, "failed"),
        ("b", 2, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.type for e in events]
    assert kinds.count("run.started") == 2 and kinds[-1] == "run.succeeded"
    assert [e.payload.get("resumed") for e in events if e.type == "run.started"] == [None, True]


def test_a_killed_coordinators_runs_complete_on_its_sibling_without_rerunning_finished_nodes(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    """Two coordinators, a run on each; one coordinator dies mid-run. The recovery sweep resumes its run on the
    sibling (recorded in the second run.started), the other run is untouched, and no succeeded node runs twice."""
    import ray

    from engine.execution.ray.coordinators import coordinator_name
    from tests.engine.execution.test_coordinators import ids_for

    runner = DurableRunner(settings.model_copy(update={"coordinators": 2}), store=store, heartbeat_s=0.2)
    logs = {slot: tmp_path / f"log{slot}" for slot in (0, 1)}
    run_ids = dict(zip((0, 1), ids_for([0, 1], 2), strict=True))
    handles = {}
    for slot, run_id in run_ids.items():
        logs[slot].mkdir()
        handles[slot] = runner.submit(chain(logs[slot], seconds=2.0, slow="b"), {"x": 1}, run_id=run_id)
    try:
        for run_id in run_ids.values():
            wait_for(lambda r=run_id: store.node_runs.latest(r).get("b") is not None, what="node b to start")

        ray.kill(find_actor(coordinator_name(1)))  # never the default coordinator, which other tests share

        resumed: dict[str, Any] = {}
        wait_for(
            lambda: (
                recover(runner=runner, stale_after_s=1.0, handles=resumed, run_ids=[run_ids[1]])
                == [run_ids[1]]
            ),
            what="the resume",
        )
        results = {0: handles[0].result(timeout=60), 1: resumed[run_ids[1]].result(timeout=60)}
    finally:
        extra = find_actor(coordinator_name(1))  # its replacement: only this test uses it
        if extra is not None:
            ray.kill(extra)

    for slot, run_id in run_ids.items():
        assert results[slot].status is RunStatus.SUCCEEDED and results[slot].outputs == {"out": 6}
        assert executions(logs[slot]) == {"a": 1, "b": 1, "c": 1, "d": 1}, slot
        assert store.runs.get(run_id).status == "succeeded"
        events = store.events.read(run_id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        kinds = [e.type for e in events]
        assert kinds[-1] == "run.succeeded" and kinds.count("node.succeeded") == 4
    started = {
        slot: [e.payload.get("coordinator") for e in store.events.read(r) if e.type == "run.started"]
        for slot, r in run_ids.items()
    }
    assert started == {0: [coordinator_name(0)], 1: [coordinator_name(1), coordinator_name(0)]}
    attempts = [(r.node_id, r.attempt, r.status) for r in store.node_runs.list(run_ids[1])]
    assert attempts == [
        ("a", 1, "succeeded"),
        ("b", 1, "failed"),
        ("b", 2, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    assert {r.attempt for r in store.node_runs.list(run_ids[0])} == {1}
