"""Run analytics: export history from the store to day-partitioned Parquet, and query it with DuckDB.

`sync_export` appends the runs finished since its watermark (incremental); `RunAnalytics` queries the files;
`breakdown` groups them by workflow, version, node, node type and owner over a time window.
`stats(store, directory)` does export and queries and returns a `StatsReport` (what `rayweave stats` prints).
"""

from __future__ import annotations

from engine.analytics.breakdown import (
    DIMENSIONS,
    AnalyticsError,
    Breakdown,
    BreakdownReport,
    Filters,
    Window,
    breakdown,
)
from engine.analytics.export import ExportResult, SyncResult, export_history, read_watermark, sync_export
from engine.analytics.queries import (
    CacheHits,
    NodeTypeFailures,
    NodeTypeLatency,
    NodeTypeRetries,
    RunAnalytics,
    RunDurationBucket,
    WorkflowSummary,
)
from engine.analytics.report import StatsReport, stats

__all__ = [
    "DIMENSIONS",
    "AnalyticsError",
    "Breakdown",
    "BreakdownReport",
    "CacheHits",
    "ExportResult",
    "Filters",
    "NodeTypeFailures",
    "NodeTypeLatency",
    "NodeTypeRetries",
    "RunAnalytics",
    "RunDurationBucket",
    "StatsReport",
    "SyncResult",
    "Window",
    "WorkflowSummary",
    "breakdown",
    "export_history",
    "read_watermark",
    "stats",
    "sync_export",
]
