"""Prometheus metrics of one API server: requests by route and status, latencies, runs by status.

Each app gets its own `CollectorRegistry` (no global registry), so several apps in one process — tests, the
benchmark — never clash. Runs by status are read from the store when scraped, so every replica reports the
same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from engine.store import Store

#: Latency buckets (seconds) fitted to an API whose reads take milliseconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _RunsByStatus(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import sqlalchemy as sa

        from engine.store.models import Run, table_of

        family = GaugeMetricFamily("rayweave_runs", "Runs in the store by status", labels=["status"])
        runs = table_of(Run)
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)).all()
        for status, count in rows:
            family.add_metric([str(status)], float(count))
        yield family


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
        self.registry.register(_RunsByStatus(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return bytes(generate_latest(self.registry))
