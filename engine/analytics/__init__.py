"""Run analytics: export history from the store to day-partitioned Parquet, and query it with DuckDB.

`stats(store, directory)` does both and returns a `StatsReport` (what `rayweave stats` prints).
"""

from __future__ import annotations

from engine.analytics.export import ExportResult, export_history
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
    "CacheHits",
    "ExportResult",
    "NodeTypeFailures",
    "NodeTypeLatency",
    "NodeTypeRetries",
    "RunAnalytics",
    "RunDurationBucket",
    "StatsReport",
    "WorkflowSummary",
    "export_history",
    "stats",
]
