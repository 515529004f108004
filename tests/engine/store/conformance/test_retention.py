"""Retention (`engine.durable.retention.prune_runs`): finished runs older than the cut-off go with their events
and attempts, on every backend; recent, queued and running runs stay, whatever their age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.durable.retention import prune_runs
from engine.store import NewEvent, NotFoundError, Store
from nodes.ids import NodeId, NodeTypeId, RunId, WorkflowId
from tests.engine.store.conformance import utcnow


def _doc() -> dict[str, Any]:
    return {"format": "rayweave.workflow/1", "name": "kept", "nodes": {}}


def _run(
    store: Store, wf: WorkflowId, *, created_days_ago: float, status: str, finished_days_ago: float | None
) -> RunId:
    now = utcnow()
    run = store.runs.create(workflow_id=wf, at=now - timedelta(days=created_days_ago)).run
    store.events.append(
        run.id, [NewEvent("run.queued"), NewEvent("node.started", NodeId("a"), {"type": "t"})]
    )
    store.node_runs.start(run.id, NodeId("a"), node_type=NodeTypeId("t"))
    if status != "queued":
        store.runs.update_status(run.id, "running", at=now - timedelta(days=created_days_ago))
    if finished_days_ago is not None:
        store.runs.update_status(run.id, status, at=now - timedelta(days=finished_days_ago))
    return run.id


def test_finished_runs_older_than_the_cutoff_go_with_their_events_and_attempts(store: Store) -> None:
    wf = store.workflows.create(_doc()).workflow_id
    old = [
        _run(store, wf, created_days_ago=40, status=status, finished_days_ago=39)
        for status in ("succeeded", "failed", "cancelled")
    ]
    # Created before the cut-off but finished after it; still running after 40 days; queued as long.
    recent_finish = _run(store, wf, created_days_ago=40, status="succeeded", finished_days_ago=1)
    running = _run(store, wf, created_days_ago=40, status="running", finished_days_ago=None)
    queued = _run(store, wf, created_days_ago=40, status="queued", finished_days_ago=None)
    fresh = _run(store, wf, created_days_ago=1, status="succeeded", finished_days_ago=0.5)
    cutoff = utcnow() - timedelta(days=30)

    counted = prune_runs(store, None, older_than=cutoff, dry_run=True)
    assert (counted.runs, sorted(counted.run_ids)) == (3, sorted(str(r) for r in old))
    assert all(store.runs.get(r).id == r for r in old)  # a dry run deletes nothing

    pruned = prune_runs(store, None, older_than=cutoff, batch=2)  # pages of two: deleting while paging
    assert (pruned.runs, sorted(pruned.run_ids)) == (3, sorted(str(r) for r in old))
    for run_id in old:
        try:
            store.runs.get(run_id)
        except NotFoundError:
            pass
        else:
            raise AssertionError(f"run {run_id} was not deleted")
        assert store.events.read(run_id) == [] and store.node_runs.list(run_id) == []
    kept = [recent_finish, running, queued, fresh]
    for run_id in kept:
        assert store.runs.get(run_id).id == run_id
        assert len(store.events.read(run_id)) == 2 and len(store.node_runs.list(run_id)) == 1
    assert store.workflows.get(wf).id == wf  # a workflow outlives its runs
    audited = store.audit.list(action="runs.pruned")
    assert [(e.actor, e.details["runs"]) for e in audited] == [("retention", 3)]
    assert prune_runs(store, None, older_than=cutoff).runs == 0  # nothing left to prune, nothing audited
    assert len(store.audit.list(action="runs.pruned")) == 1


def test_a_limit_stops_after_that_many_runs(store: Store) -> None:
    wf = store.workflows.create(_doc()).workflow_id
    for _ in range(3):
        _run(store, wf, created_days_ago=10, status="succeeded", finished_days_ago=9)
    cutoff = utcnow() - timedelta(days=5)
    assert prune_runs(store, None, older_than=cutoff, limit=2).runs == 2
    assert prune_runs(store, None, older_than=cutoff).runs == 1
