"""The incremental analytics export reads finished runs, their attempts and cache levels on every backend."""

from __future__ import annotations

from pathlib import Path

from engine.analytics import RunAnalytics, breakdown, sync_export
from engine.store import NewEvent, Store
from tests.engine.store.conformance.populate import populate


def test_incremental_export_on_each_backend(store: Store, tmp_path: Path) -> None:
    populate(store, runs=4)
    first = sync_export(store, tmp_path / "export")
    # The inline run never finished: only the four finished runs and their eight attempts are exported.
    assert (first.runs, first.node_runs) == (4, 8)
    wf = store.workflows.list(name="etl")[0].id
    run = store.runs.create(workflow_id=wf, owner="bob").run
    store.runs.update_status(run.id, "running")
    store.node_runs.record_many(
        [
            {
                "run_id": run.id,
                "node_id": "a",
                "node_type": "t/a@1",
                "attempt": 1,
                "status": "cached",
                "cache_hit": True,
            }
        ]
    )
    store.events.append(run.id, [NewEvent("node.cached", "a", {"type": "t/a@1", "level": "disk"})])
    store.runs.update_status(run.id, "succeeded")
    second = sync_export(store, tmp_path / "export")
    assert (second.runs, second.node_runs, second.previous) == (1, 1, first.watermark)
    with RunAnalytics(tmp_path / "export") as analytics:
        by_owner = {g.key["owner"]: g for g in breakdown(analytics, ["owner"]).groups}
    assert by_owner["bob"].cache_hits_by_level == {"disk": 1}
    assert (by_owner["local"].runs, by_owner["local"].retries) == (4, 4)
