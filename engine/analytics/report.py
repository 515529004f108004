"""`stats`: bring the incremental export up to date and answer every analytics question in one report."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from engine.analytics.breakdown import BreakdownReport, Filters, Window, breakdown, owner_tenants
from engine.analytics.export import ExportResult, SyncResult, sync_export
from engine.analytics.queries import (
    CacheHits,
    NodeTypeFailures,
    NodeTypeLatency,
    NodeTypeRetries,
    RunAnalytics,
    RunDurationBucket,
    WorkflowSummary,
)
from engine.store import Store


@dataclass(frozen=True)
class StatsReport:
    """Answers about the run history of an installation (optionally of one workflow)."""

    export: ExportResult | SyncResult
    slowest_node_types: list[NodeTypeLatency]
    failure_rates: list[NodeTypeFailures]
    retry_counts: list[NodeTypeRetries]
    cache_hit_rate: CacheHits
    run_durations: list[RunDurationBucket]
    workflows: list[WorkflowSummary]
    breakdown: BreakdownReport | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`rayweave stats --json`)."""

        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                data = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
                for name in ("failure_rate", "attempt_failure_rate", "hit_rate"):
                    if hasattr(value, name):
                        data[name] = getattr(value, name)
                return data
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, datetime | Path):
                return str(value) if isinstance(value, Path) else value.isoformat()
            return value

        data = {
            f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "breakdown"
        }
        data["breakdown"] = self.breakdown.to_json() if self.breakdown is not None else None
        return data


def stats(
    store: Store,
    directory: str | Path,
    *,
    workflow_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: Literal["hour", "day", "week", "month"] = "day",
    limit: int = 10,
    group_by: tuple[str, ...] = ("workflow", "version"),
    memory_median: bool = True,
    tenant: str | None = None,
) -> StatsReport:
    """Bring the incremental export under `directory` up to date (`sync_export`: only the runs finished since
    its watermark are read from the store) and report on the finished runs created in [since, until).
    `memory_median=False` leaves the breakdown's memory medians None (see `breakdown`); `tenant` keeps the
    breakdown to the runs of that tenant's users (grouping by `tenant` reads the users' tenants from `store`)."""
    window = Window(since, until)
    window.check()
    exported = sync_export(store, directory)
    with RunAnalytics(directory, since=since, until=until) as analytics:
        overall = analytics.cache_hit_rate(workflow_id=workflow_id)
        workflows = analytics.per_workflow()
        if workflow_id is not None:
            workflows = [w for w in workflows if w.workflow_id == workflow_id]
        return StatsReport(
            export=exported,
            slowest_node_types=analytics.slowest_node_types(limit=limit, workflow_id=workflow_id),
            failure_rates=analytics.failure_rates(workflow_id=workflow_id),
            retry_counts=analytics.retry_counts(workflow_id=workflow_id),
            cache_hit_rate=overall[0] if overall else CacheHits("*", 0, 0),
            run_durations=analytics.run_durations(bucket=bucket, workflow_id=workflow_id),
            workflows=workflows,
            breakdown=breakdown(
                analytics,
                group_by,
                window=window,
                filters=Filters(
                    workflow_id=workflow_id,
                    tenant=tenant,
                    tenants=owner_tenants(store) if tenant is not None or "tenant" in group_by else None,
                ),
                memory_median=memory_median,
            ),
        )
