"""Engine metrics: node counts reach Ray added up (per run, at least once a second), durations one by one."""

from __future__ import annotations

from typing import Any

from engine.execution.ray.metrics import EngineMetrics
from nodes.states import NodeStatus, RunStatus


class _Instrument:
    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, str]]] = []

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self.calls.append((value, dict(tags or {})))

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.calls.append((value, dict(tags or {})))


def _metrics() -> tuple[EngineMetrics, dict[str, Any]]:
    parts = {name: _Instrument() for name in ("durations", "nodes", "cache_hits", "runs")}
    return EngineMetrics(parts["durations"], parts["nodes"], parts["cache_hits"], parts["runs"]), parts


def test_node_counts_are_handed_over_per_run_and_durations_per_node() -> None:
    metrics, parts = _metrics()
    # A run shorter than the hand-over interval (a second by default; the loop below took longer under load).
    metrics.FLUSH_EVERY_S = 3600.0
    metrics.flush()
    for _ in range(1000):
        metrics.node_finished("t/tiny@1", NodeStatus.SUCCEEDED, 0.001)
    metrics.node_finished("t/tiny@1", NodeStatus.FAILED, 0.002)
    metrics.node_finished("t/other@1", NodeStatus.SKIPPED, None)
    assert len(parts["durations"].calls) == 1001
    assert parts["nodes"].calls == []  # not yet: added up until the run ends
    metrics.run_finished(RunStatus.FAILED)
    assert sorted(parts["nodes"].calls, key=lambda c: c[1]["status"]) == [
        (1.0, {"node_type": "t/tiny@1", "status": "failed"}),
        (1.0, {"node_type": "t/other@1", "status": "skipped"}),
        (1000, {"node_type": "t/tiny@1", "status": "succeeded"}),
    ]
    assert parts["runs"].calls == [(1, {"status": "failed"})]


def test_a_long_run_hands_counts_over_while_it_runs() -> None:
    metrics, parts = _metrics()
    metrics.FLUSH_EVERY_S = 0.0  # every node is "a second later"
    metrics.flush()
    metrics.node_finished("t/slow@1", NodeStatus.SUCCEEDED, 2.0)
    assert parts["nodes"].calls == [(1, {"node_type": "t/slow@1", "status": "succeeded"})]


def test_a_failing_instrument_never_fails_the_run() -> None:
    class Broken(_Instrument):
        def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
            raise RuntimeError("exporter down")

        def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
            raise RuntimeError("exporter down")

    metrics = EngineMetrics(Broken(), Broken(), Broken(), Broken())
    metrics.node_finished("t/x@1", NodeStatus.SUCCEEDED, 0.1)
    metrics.cache_hit("t/x@1", "memory")
    metrics.run_finished(RunStatus.SUCCEEDED)
