"""The data of one workflow's report: duration trend, per-node breakdown, a critical-path Gantt and a failure
heatmap, read from an incremental export (`RunAnalytics` over what `sync_export` wrote).

`engine.analytics.render` draws it; `GET /v1/analytics/workflows/{id}` sends it as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.analytics.breakdown import Breakdown, Filters, Window, breakdown
from engine.analytics.dag import critical_path, upstream
from engine.analytics.queries import RunAnalytics
from nodes.states import RunStatus

#: At most this many runs in the trend (the most recent ones).
TREND_RUNS = 2000


@dataclass(frozen=True)
class TrendPoint:
    """One finished run: when it was created, how long it took, how it ended."""

    created_at: datetime
    duration_s: float | None
    status: str


@dataclass(frozen=True)
class GanttBar:
    """One node of the run shown in the Gantt: seconds from the run's start, span, and how it ended."""

    node_id: str
    start_s: float
    duration_s: float
    status: str
    cache_hit: bool
    critical: bool


@dataclass(frozen=True)
class HeatCell:
    """Executions of one node on one day and how many of them failed."""

    node_id: str
    day: str
    executions: int
    failed: int


@dataclass(frozen=True)
class WorkflowReport:
    """Everything the report shows about one workflow over a window (see the module docstring)."""

    workflow_id: str
    window: Window
    summary: Breakdown | None
    trend: list[TrendPoint]
    nodes: list[Breakdown]
    gantt_run: str | None
    gantt: list[GanttBar]
    critical_path: list[str]
    heatmap: list[HeatCell]
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the workflow has no finished run in the window."""
        return self.summary is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""

        def plain(value: Any) -> Any:
            if isinstance(value, Breakdown):
                return value.to_json()
            if isinstance(value, Window):
                return value.to_json()
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, datetime):
                return value.isoformat()
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def workflow_report(
    analytics: RunAnalytics,
    workflow_id: str,
    *,
    window: Window = Window(),
    document: Mapping[str, Any] | None = None,
    owner: str | None = None,
    memory_median: bool = True,
) -> WorkflowReport:
    """The report of `workflow_id` (only `owner`'s runs when given). `document` (the latest version) gives the
    edges of the critical path; without it the Gantt marks no path. `memory_median=False` (the drawn report,
    which does not show it) leaves the memory medians None and reads the executions once for the per-node
    figures and the summary's (their sums)."""
    filters = Filters(workflow_id=workflow_id, owner=owner)
    per_node = breakdown(
        analytics, ["node"], window=window, filters=filters, memory_median=memory_median
    ).groups
    overall = breakdown(
        analytics,
        ["workflow"],
        window=window,
        filters=filters,
        memory_median=memory_median,
        executions_of=None if memory_median else per_node,
    )
    notes = list(overall.notes)
    if not overall.groups:
        return WorkflowReport(workflow_id, window, None, [], [], None, [], [], [], notes)
    where, params = _where(workflow_id, owner)
    # The trend's runs, newest first: the Gantt's run is among them unless none of them succeeded.
    recent = analytics.execute(
        f"SELECT created_at, duration_s, status, run_id, day FROM runs WHERE {where} "
        "ORDER BY created_at DESC LIMIT ?",
        [*params, TREND_RUNS],
    )
    trend = [TrendPoint(r[0], r[1], r[2]) for r in reversed(recent)]
    medians = {str(g.key["node"]): g.p50_s or 0.0 for g in per_node}
    path: list[str] = []
    if document is not None:
        try:
            path = critical_path(upstream(document), medians).nodes
        except ValueError as exc:
            notes.append(f"no critical path: {exc}")
    latest = next((r for r in recent if r[2] == RunStatus.SUCCEEDED), None)
    gantt_run, gantt = _gantt(analytics, where, params, set(path), latest)
    # Executions are filed under their run's creation day (`day`, a partition: nothing to decode).
    heat = [
        HeatCell(str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in analytics.execute(
            f"""
            SELECT node_id, day, count(*), count(*) FILTER (WHERE final_status = 'failed')
            FROM executions WHERE {where.replace("created_at", "run_created_at")} GROUP BY ALL ORDER BY 2, 1
            """,
            params,
        )
    ]
    return WorkflowReport(
        workflow_id, window, overall.groups[0], trend, per_node, gantt_run, gantt, path, heat, notes
    )


def _where(workflow_id: str, owner: str | None) -> tuple[str, list[Any]]:
    if owner is None:
        return "workflow_id = ? AND created_at IS NOT NULL", [workflow_id]
    return "workflow_id = ? AND owner = ? AND created_at IS NOT NULL", [workflow_id, owner]


def _gantt(
    analytics: RunAnalytics,
    where: str,
    params: list[Any],
    path: set[str],
    latest: tuple[Any, ...] | None,
) -> tuple[str | None, list[GanttBar]]:
    """The bars of the latest succeeded run (else the latest run); `latest`: its row (created_at, duration,
    status, run_id, day) when already read."""
    if latest is None:
        found = analytics.execute(
            f"SELECT created_at, duration_s, status, run_id, day FROM runs WHERE {where} "
            "ORDER BY status = 'succeeded' DESC, created_at DESC LIMIT 1",
            params,
        )
        if not found:
            return None, []
        latest = found[0]
    run_id, day = str(latest[3]), str(latest[4])
    # The day partition keeps the scan to one day's files (run ids are in no order DuckDB can skip by).
    rows = analytics.execute(
        """
        SELECT node_id, started_at, span_s, final_status, cache_hit,
               min(started_at) OVER () AS run_start
        FROM executions WHERE day = ? AND run_id = ? AND started_at IS NOT NULL ORDER BY started_at, node_id
        """,
        [day, run_id],
    )
    bars = [
        GanttBar(
            node_id=str(r[0]),
            start_s=(r[1] - r[5]).total_seconds(),
            duration_s=float(r[2] or 0.0),
            status=str(r[3]),
            cache_hit=bool(r[4]),
            critical=str(r[0]) in path,
        )
        for r in rows
    ]
    return run_id, bars
