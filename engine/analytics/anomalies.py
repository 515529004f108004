"""Anomalies in the run history, found with robust statistics per key (workflow and node), in run order.

For each (workflow, node) the executions are read in the order of their runs' creation. After a warm-up of
`WARMUP` executions, each new one is compared with the median and the median absolute deviation (MAD) of the
previous `WINDOW` ones of its key:

- `duration`: its time (first start to last finish, cache hits excluded) is more than `DURATION_FACTOR` times the
  median and more than `K` scaled MADs above it (a slowdown, not noise);
- `output_size`: the same test on the bytes of its stored result;
- `failure_burst`: it is the `BURST`-th failure in a row while the key's failure rate over the window is below
  `BURST_BASELINE` (a burst, not a node that always fails). One anomaly per burst.

An anomaly's `delay` is how many executions of its key it came after the first one of its kind in a row (0 for
durations and sizes, BURST - 1 for bursts). Anomalies are answers to a query (`GET /v1/analytics/anomalies`,
`detect`); they are not yet events of the run (the event types are a closed set kept by migrations).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.analytics.breakdown import scope_term
from engine.analytics.queries import RunAnalytics
from nodes.states import NodeStatus

if TYPE_CHECKING:
    from engine.store.reports import RunScope

WARMUP = 10
WINDOW = 50
K = 5.0
DURATION_FACTOR = 2.0
BURST = 3
BURST_BASELINE = 0.2
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


def detect(
    analytics: RunAnalytics,
    *,
    workflow_id: str | None = None,
    owner: str | None = None,
    scope: RunScope | None = None,
) -> list[Anomaly]:
    """Every anomaly in the exported history (of one workflow, of one owner's runs, of the runs `scope` may
    see), oldest first."""
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
               output_bytes
        FROM executions WHERE {" AND ".join(terms)}
        ORDER BY workflow_id, node_id, run_created_at, run_id
        """,
        params,
    )
    found: list[Anomaly] = []
    state: dict[tuple[Any, Any], dict[str, Any]] = {}
    for wf, node, node_type, run, at, hit, final, span, size in rows:
        key = (wf, node)
        s = state.setdefault(
            key,
            {
                "durations": deque(maxlen=WINDOW),
                "sizes": deque(maxlen=WINDOW),
                "outcomes": deque(maxlen=WINDOW),
                "streak": 0,
            },
        )
        failed = final == NodeStatus.FAILED

        where = (wf, node, node_type, run, at)
        if not hit and not failed and span is not None:
            if len(s["durations"]) >= WARMUP:
                out, median, threshold = _outlier(s["durations"], float(span))
                if out:
                    found.append(Anomaly("duration", *where, float(span), median, threshold, 0))
            s["durations"].append(float(span))
        if size is not None and not failed:
            if len(s["sizes"]) >= WARMUP:
                out, median, threshold = _outlier(s["sizes"], float(size))
                if out:
                    found.append(Anomaly("output_size", *where, float(size), median, threshold, 0))
            s["sizes"].append(float(size))
        s["streak"] = s["streak"] + 1 if failed else 0
        if failed and s["streak"] == BURST and len(s["outcomes"]) >= WARMUP:
            rate = sum(s["outcomes"]) / len(s["outcomes"])
            if rate < BURST_BASELINE:
                found.append(Anomaly("failure_burst", *where, float(BURST), rate, BURST_BASELINE, BURST - 1))
        s["outcomes"].append(1 if failed else 0)
    found.sort(key=lambda a: (a.at is None, a.at or datetime.min, a.node_id))
    return found
