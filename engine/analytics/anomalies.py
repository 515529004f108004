"""Anomalies in the run history, found with robust statistics per key (workflow and node), in run order.

For each (workflow, node) the executions are read in the order of their runs' creation. After a warm-up of
`WARMUP` executions, each new one is compared with the median and the median absolute deviation (MAD) of the
previous `WINDOW` ones of its key:

- `duration`: its time (first start to last finish, cache hits excluded) is more than `DURATION_FACTOR` times the
  median and more than `K` scaled MADs above it (a slowdown, not noise);
- `output_size`: the same test on the bytes of its output (its stored result, or the in-memory size the worker
  measured), which must also exceed the median by `OUTPUT_FLOOR` bytes (a short string twice as long as usual
  is no blow-up);
- `memory`: the same test on its measured peak-memory rise (`engine.execution.usage`), which must also exceed
  the median by `MEMORY_FLOOR` bytes (most nodes raise the peak by nothing or a few pages, where any rise would
  be many MADs);
- `failure_burst`: it is the `BURST`-th failure in a row while the key's failure rate over the window is below
  `BURST_BASELINE` (a burst, not a node that keeps failing). A streak counts at most `BURST - 1` of its
  failures in that rate: the failures that make a burst are the anomaly, not the key's usual rate (counting
  every failure of one or two recent bursts hid the next one). One anomaly per burst.

An anomaly's `delay` is how many executions of its key it came after the first one of its kind in a row (0 for
durations and sizes, BURST - 1 for bursts). `detect` finds them in the exported history; as runs finish,
`engine.analytics.live` judges each run's executions with the same `KeyHistory` and records what it finds as
`anomaly.detected` events of the run.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nodes.states import NodeStatus

if TYPE_CHECKING:
    from engine.analytics.queries import RunAnalytics
    from engine.store.reports import RunScope

WARMUP = 10
WINDOW = 50
K = 5.0
DURATION_FACTOR = 2.0
BURST = 3
BURST_BASELINE = 0.2
#: A memory anomaly is at least this many bytes above the median.
MEMORY_FLOOR = 16 * 2**20
#: An output size anomaly is at least this many bytes above the median.
OUTPUT_FLOOR = 16 * 2**10
#: 1.4826 * MAD estimates the standard deviation of normal data.
_MAD_SCALE = 1.4826


@dataclass(frozen=True)
class Anomaly:
    """One anomalous execution: what kind, where, the value seen and what was expected."""

    kind: str
    workflow_id: str | None
    node_id: str
    node_type: str
    run_id: str
    at: datetime | None
    value: float
    expected: float
    threshold: float
    delay: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


def _outlier(history: deque[float], value: float) -> tuple[bool, float, float]:
    median = statistics.median(history)
    mad = statistics.median(abs(v - median) for v in history) * _MAD_SCALE
    threshold = max(median * DURATION_FACTOR, median + K * max(mad, 1e-9))
    return value > threshold, median, threshold


@dataclass(frozen=True)
class Execution:
    """One node's execution in one run, as the detector reads it (a row of the export's `executions`)."""

    workflow_id: str | None
    node_id: str
    node_type: str
    run_id: str
    at: datetime | None
    cache_hit: bool
    final_status: str
    span_s: float | None
    output_bytes: int | None
    memory_bytes: int | None = None


class KeyHistory:
    """The recent executions of one key (workflow, node), oldest first, and the test of the next one against
    them: the one detector behind `detect` (the exported history) and `engine.analytics.live` (a run that just
    finished)."""

    def __init__(self) -> None:
        self.durations: deque[float] = deque(maxlen=WINDOW)
        self.sizes: deque[float] = deque(maxlen=WINDOW)
        self.memories: deque[float] = deque(maxlen=WINDOW)
        #: 1 for a failure among the first BURST - 1 of its streak, else 0.
        self.outcomes: deque[int] = deque(maxlen=WINDOW)
        self.streak = 0

    def observe(self, e: Execution) -> list[Anomaly]:
        """The anomalies `e` is, judged against the executions observed before it; then remember it."""
        found: list[Anomaly] = []
        failed = e.final_status == NodeStatus.FAILED
        where = (e.workflow_id, e.node_id, e.node_type, e.run_id, e.at)
        if not e.cache_hit and not failed and e.span_s is not None:
            if len(self.durations) >= WARMUP:
                out, median, threshold = _outlier(self.durations, float(e.span_s))
                if out:
                    found.append(Anomaly("duration", *where, float(e.span_s), median, threshold, 0))
            self.durations.append(float(e.span_s))
        if e.output_bytes is not None and not failed:
            if len(self.sizes) >= WARMUP:
                out, median, threshold = _outlier(self.sizes, float(e.output_bytes))
                threshold = max(threshold, median + OUTPUT_FLOOR)
                if out and e.output_bytes > threshold:
                    found.append(Anomaly("output_size", *where, float(e.output_bytes), median, threshold, 0))
            self.sizes.append(float(e.output_bytes))
        if e.memory_bytes is not None and not e.cache_hit:
            if len(self.memories) >= WARMUP:
                out, median, threshold = _outlier(self.memories, float(e.memory_bytes))
                threshold = max(threshold, median + MEMORY_FLOOR)
                if out and e.memory_bytes > threshold:
                    found.append(Anomaly("memory", *where, float(e.memory_bytes), median, threshold, 0))
            self.memories.append(float(e.memory_bytes))
        self.streak = self.streak + 1 if failed else 0
        if failed and self.streak == BURST and len(self.outcomes) >= WARMUP:
            rate = sum(self.outcomes) / len(self.outcomes)
            if rate < BURST_BASELINE:
                found.append(Anomaly("failure_burst", *where, float(BURST), rate, BURST_BASELINE, BURST - 1))
        # A streak counts at most BURST - 1 failures in the rate (see the module docstring).
        self.outcomes.append(1 if 0 < self.streak < BURST else 0)
        return found


def detect(
    analytics: RunAnalytics,
    *,
    workflow_id: str | None = None,
    owner: str | None = None,
    scope: RunScope | None = None,
) -> list[Anomaly]:
    """Every anomaly in the exported history (of one workflow, of one owner's runs, of the runs `scope` may
    see), oldest first."""
    from engine.analytics.breakdown import scope_term

    term, params = scope_term(scope)
    terms = [term]
    if workflow_id is not None:
        terms.append("workflow_id = ?")
        params.append(workflow_id)
    if owner is not None:
        terms.append("owner = ?")
        params.append(owner)
    rows = analytics.execute(
        f"""
        SELECT workflow_id, node_id, node_type, run_id, run_created_at, cache_hit, final_status, span_s,
               output_bytes, memory_bytes
        FROM executions WHERE {" AND ".join(terms)}
        ORDER BY workflow_id, node_id, run_created_at, run_id
        """,
        params,
    )
    found: list[Anomaly] = []
    keys: dict[tuple[Any, Any], KeyHistory] = {}
    for wf, node, node_type, run, at, hit, final, span, size, memory in rows:
        history = keys.setdefault((wf, node), KeyHistory())
        found.extend(history.observe(Execution(wf, node, node_type, run, at, hit, final, span, size, memory)))
    found.sort(key=lambda a: (a.at is None, a.at or datetime.min, a.node_id))
    return found
