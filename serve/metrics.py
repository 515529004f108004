"""Prometheus metrics of one API server: requests by route and status, latencies, runs and node runs.

Each app gets its own `CollectorRegistry` (no global registry), so several apps in one process — tests, the
benchmark — never clash. Run and node-run figures are read from the store when scraped, so every replica
reports the same numbers, and they survive restarts:

- `rayweave_runs{status}`: runs in the store by status (gauge);
- `rayweave_node_runs_total{node_type,status}`: node attempts by node type and status (counter);
- `rayweave_node_run_duration_seconds{node_type}`: summary (`_count`, `_sum`) of finished attempts' wall time,
  from `started_at` to `finished_at`, by node type;
- `rayweave_node_cache_hits_total{node_type}`: nodes answered from the result cache;
- `rayweave_anomalies_total{kind}`: `anomaly.detected` events by kind (duration, output_size, failure_burst;
  `engine.analytics.live`), counted over their partial index.

Each scrape costs two aggregate `GROUP BY` queries (`store.reports.metrics_snapshot()`), and a third over the
anomaly events' partial index (`anomaly_counts()`), whose result size is bounded by the number of node types
times statuses, never by the number of runs.

The engine also records per-task metrics with `ray.util.metrics` (`engine/execution/ray/metrics.py`:
`rayweave_node_duration_seconds` histogram, `rayweave_nodes_total`, `rayweave_cache_hits_total`,
`rayweave_runs_total`). Those are exported by Ray's own metrics endpoint (each Ray node's metrics agent, the
targets listed in `/tmp/ray/session_latest/metrics/prometheus/` service discovery), not by this route: point
Prometheus at both. The names here differ from Ray's so the two sources never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from engine.store import Store

#: Latency buckets (seconds) fitted to an API whose reads take milliseconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StoreFigures(Collector):
    """Runs by status, and node-run counts, durations and cache hits by node type, from one store snapshot per
    scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | SummaryMetricFamily]:
        snapshot = self.store.reports.metrics_snapshot()
        runs = GaugeMetricFamily("rayweave_runs", "Runs in the store by status", labels=["status"])
        for status, count in snapshot.runs_by_status.items():
            runs.add_metric([status], float(count))
        yield runs

        counts = CounterMetricFamily(
            "rayweave_node_runs", "Node attempts by node type and status", labels=["node_type", "status"]
        )
        durations = SummaryMetricFamily(
            "rayweave_node_run_duration_seconds",
            "Wall time of finished node attempts by node type",
            labels=["node_type"],
        )
        hits = CounterMetricFamily(
            "rayweave_node_cache_hits",
            "Nodes answered from the result cache by node type",
            labels=["node_type"],
        )
        timed: dict[str, tuple[int, float]] = {}
        cached: dict[str, int] = {}
        for figures in snapshot.node_runs:
            kind = figures.node_type or "unknown"
            counts.add_metric([kind, figures.status], float(figures.count))
            n, s = timed.get(kind, (0, 0.0))
            timed[kind] = (n + figures.finished, s + max(0.0, figures.finished_seconds))
            cached[kind] = cached.get(kind, 0) + figures.cache_hits
        for kind, (n, s) in sorted(timed.items()):
            durations.add_metric([kind], count_value=n, sum_value=s)
            hits.add_metric([kind], float(cached[kind]))
        yield counts
        yield durations
        yield hits
        anomalies = CounterMetricFamily(
            "rayweave_anomalies", "anomaly.detected events of runs by kind", labels=["kind"]
        )
        for kind, count in sorted(self.store.reports.anomaly_counts().items()):
            anomalies.add_metric([kind], float(count))
        yield anomalies


class ApiMetrics:
    """The metric objects of one app and the text exposition of them."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "rayweave_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rayweave_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreFigures(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return bytes(generate_latest(self.registry))
