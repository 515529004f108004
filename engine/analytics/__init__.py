"""Run analytics: export history from the store to day-partitioned Parquet, and query it with DuckDB.

`sync_export` appends the runs finished since its watermark (incremental); `RunAnalytics` queries the files;
`breakdown` groups them by workflow, version, node, node type, owner and tenant over a time window.
`stats(store, directory)` does export and queries and returns a `StatsReport` (what `rayweave stats` prints).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Eager: the module is light (no DuckDB), and `breakdown` must name the function, not the submodule.
from engine.analytics.breakdown import (
    DIMENSIONS,
    AnalyticsError,
    Breakdown,
    BreakdownReport,
    Filters,
    Window,
    breakdown,
    owner_tenants,
)

if TYPE_CHECKING:
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

#: Where each public name lives: imported on first use, so importing a light submodule (`engine.analytics.live`,
#: which the durable run's store sink imports) does not load DuckDB and pyarrow.
_HOMES = {
    "DIMENSIONS": "engine.analytics.breakdown",
    "AnalyticsError": "engine.analytics.breakdown",
    "Breakdown": "engine.analytics.breakdown",
    "BreakdownReport": "engine.analytics.breakdown",
    "Filters": "engine.analytics.breakdown",
    "Window": "engine.analytics.breakdown",
    "breakdown": "engine.analytics.breakdown",
    "owner_tenants": "engine.analytics.breakdown",
    "ExportResult": "engine.analytics.export",
    "SyncResult": "engine.analytics.export",
    "export_history": "engine.analytics.export",
    "read_watermark": "engine.analytics.export",
    "sync_export": "engine.analytics.export",
    "CacheHits": "engine.analytics.queries",
    "NodeTypeFailures": "engine.analytics.queries",
    "NodeTypeLatency": "engine.analytics.queries",
    "NodeTypeRetries": "engine.analytics.queries",
    "RunAnalytics": "engine.analytics.queries",
    "RunDurationBucket": "engine.analytics.queries",
    "WorkflowSummary": "engine.analytics.queries",
    "StatsReport": "engine.analytics.report",
    "stats": "engine.analytics.report",
}


def __getattr__(name: str) -> Any:
    """The public name `name`, imported from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


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
    "owner_tenants",
    "read_watermark",
    "stats",
    "sync_export",
]
