"""Ray metrics of the engine (exported by Ray to its dashboard and Prometheus).

Created by the coordinator when it starts its first run (never at import time): node durations (histogram),
node counts by status and node type, cache hits by level, runs by status.
"""

from __future__ import annotations

from typing import Any

from engine.execution.status import NodeStatus, RunStatus

_DURATION_BOUNDARIES = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]


class EngineMetrics:
    """The engine's metric instruments; methods are cheap and never raise."""

    def __init__(self, durations: Any, nodes: Any, cache_hits: Any, runs: Any) -> None:
        self._durations = durations
        self._nodes = nodes
        self._cache_hits = cache_hits
        self._runs = runs

    @classmethod
    def create(cls) -> EngineMetrics:
        """Build the instruments with `ray.util.metrics` (requires a connected Ray)."""
        from ray.util import metrics

        return cls(
            metrics.Histogram(
                "rayweave_node_duration_seconds",
                description="Wall time of node runs, from first attempt start to end.",
                boundaries=_DURATION_BOUNDARIES,
                tag_keys=("node_type",),
            ),
            metrics.Counter(
                "rayweave_nodes_total",
                description="Finished nodes by node type and final status.",
                tag_keys=("node_type", "status"),
            ),
            metrics.Counter(
                "rayweave_cache_hits_total",
                description="Nodes answered from the result cache, by cache level.",
                tag_keys=("node_type", "level"),
            ),
            metrics.Counter(
                "rayweave_runs_total", description="Finished runs by final status.", tag_keys=("status",)
            ),
        )

    def node_finished(self, node_type: str, status: NodeStatus, duration_s: float | None) -> None:
        """Count a finished node and record its duration."""
        try:
            self._nodes.inc(1, tags={"node_type": node_type, "status": str(status)})
            if duration_s is not None:
                self._durations.observe(duration_s, tags={"node_type": node_type})
        except Exception:  # metrics must never fail a run
            return

    def cache_hit(self, node_type: str, level: str) -> None:
        """Count a cache hit."""
        try:
            self._cache_hits.inc(1, tags={"node_type": node_type, "level": level})
        except Exception:
            return

    def run_finished(self, status: RunStatus) -> None:
        """Count a finished run."""
        try:
            self._runs.inc(1, tags={"status": str(status)})
        except Exception:
            return
