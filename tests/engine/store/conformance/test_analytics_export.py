"""The analytics export reads both backends the same way (streamed from PostgreSQL with a server cursor)."""

from __future__ import annotations

from pathlib import Path

from engine.analytics import RunAnalytics, export_history
from engine.store import Store
from tests.engine.store.conformance.populate import populate


def test_export_and_query_on_each_backend(store: Store, tmp_path: Path) -> None:
    populate(store, runs=4)
    result = export_history(store, tmp_path / "export")
    assert (result.node_runs, result.runs) == (8, 5)
    with RunAnalytics(tmp_path / "export") as analytics:
        (retries,) = analytics.retry_counts()
        (failures,) = analytics.failure_rates()
        summaries = {s.workflow_id: s for s in analytics.per_workflow()}
    assert (retries.node_type, retries.executions, retries.retries) == ("t/a@1", 4, 4)
    assert (failures.failed_attempts, failures.failed_executions) == (4, 0)
    assert summaries[None].runs == 1  # the inline run is reported under no workflow
    assert sum(s.runs for s in summaries.values()) == 5
