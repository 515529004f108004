"""Ray metrics of the engine (exported by Ray to its dashboard and Prometheus).

Created by the coordinator when it starts its first run (never at import time): node durations (histogram),
node counts by status and node type, cache hits by level, runs by status. Node counts are added up here and
handed to Ray at most once a second and at the end of every run, instead of one call per node: a fan-out of a
thousand tiny nodes would otherwise spend a noticeable share of its time in metric calls.
"""

from __future__ import annotations

import time
from typing import Any

from nodes.states import NodeStatus, RunStatus

_DURATION_BOUNDARIES = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]


class EngineMetrics:
    """The engine's metric instruments; methods are cheap and never raise."""

    #: Longest time node counts wait here before they go to Ray.
    FLUSH_EVERY_S = 1.0

    def __init__(self, durations: Any, nodes: Any, cache_hits: Any, runs: Any) -> None:
        self._durations = durations
        self._nodes = nodes
        self._cache_hits = cache_hits
        self._runs = runs
        self._counts: dict[tuple[str, str], int] = {}
        self._flush_at = time.monotonic() + self.FLUSH_EVERY_S

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
        key = (node_type, str(status))
        self._counts[key] = self._counts.get(key, 0) + 1
        try:
            if duration_s is not None:
                self._durations.observe(duration_s, tags={"node_type": node_type})
        except Exception:  # metrics must never fail a run
            pass
        if time.monotonic() >= self._flush_at:
            self.flush()

    def flush(self) -> None:
        """Hand the node counts added up so far to Ray."""
        counts, self._counts = self._counts, {}
        self._flush_at = time.monotonic() + self.FLUSH_EVERY_S
        for (node_type, status), count in counts.items():
            try:
                self._nodes.inc(count, tags={"node_type": node_type, "status": status})
            except Exception:
                continue

    def cache_hit(self, node_type: str, level: str) -> None:
        """Count a cache hit."""
        try:
            self._cache_hits.inc(1, tags={"node_type": node_type, "level": level})
        except Exception:
            return

    def run_finished(self, status: RunStatus) -> None:
        """Count a finished run (and hand over the node counts of the run)."""
        self.flush()
        try:
            self._runs.inc(1, tags={"status": str(status)})
        except Exception:
            return
