"""Anomalies of a run that just finished, recorded as its `anomaly.detected` events.

`record_run_anomalies(store, run_id)` is called once per run, after its final state is stored (by the durable
run's store sink, `engine.durable.sink`, in the process that recorded the run): it reads the node attempts of
the run and of the latest `WINDOW` finished runs of its workflow created before it (two indexed reads: runs by
workflow, attempts by run id), judges the run's executions with the detector `detect` uses
(`engine.analytics.anomalies.KeyHistory`: median/MAD after a warm-up of `WARMUP` executions per node) and
appends one `anomaly.detected` event per anomaly after the run's final event. Nothing is read while the
workflow has fewer than `WARMUP` finished runs (the warm-up), and runs of inline documents (no workflow id)
have no history to compare with.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engine.analytics.anomalies import WARMUP, WINDOW, Anomaly, Execution, KeyHistory
from engine.analytics.executions import _executions, _finished_node_batches
from nodes.ids import NodeId, RunId
from nodes.states import EventType, RunStatus

if TYPE_CHECKING:
    from engine.store import Store

_log = logging.getLogger("rayweave.analytics")


def run_anomalies(store: Store, run_id: str) -> list[Anomaly]:
    """The anomalies among the executions of run `run_id` (finished), judged against the runs of its workflow
    created before it (at most `WINDOW`); empty during the warm-up."""
    run = store.runs.get(RunId(run_id))
    if run.workflow_id is None or run.created_at is None:
        return []
    earlier = store.runs.list(
        workflow_id=run.workflow_id,
        status=RunStatus.terminal(),
        created_before=run.created_at,
        limit=WINDOW,
    ).items
    if len(earlier) < WARMUP:
        return []
    ids = [str(r.id) for r in reversed(earlier)] + [str(run.id)]
    usage = store.reports.usage_of(ids)
    attempts = [
        row
        for rows in _finished_node_batches(store.reports.node_runs_of(ids), {}, True, usage)
        for row in rows
    ]
    order = {run_id: index for index, run_id in enumerate(ids)}
    keys: dict[str, KeyHistory] = {}
    found: list[Anomaly] = []
    for e in sorted(_executions(attempts), key=lambda e: (order[e["run_id"]], e["node_id"])):
        judged = keys.setdefault(e["node_id"], KeyHistory()).observe(_execution(e))
        if e["run_id"] == str(run.id):
            found.extend(judged)
    return found


def _execution(row: dict[str, Any]) -> Execution:
    return Execution(
        row["workflow_id"],
        row["node_id"],
        row["node_type"],
        row["run_id"],
        row["run_created_at"],
        bool(row["cache_hit"]),
        str(row["final_status"]),
        row["span_s"],
        row["output_bytes"],
        row.get("memory_bytes"),
    )


def record_run_anomalies(store: Store, run_id: str) -> list[Anomaly]:
    """Detect the anomalies of a finished run and append them as `anomaly.detected` events (payload: the
    anomaly's JSON form, `Anomaly.to_json`). Never raises: a failure is logged and nothing is recorded."""
    from engine.store import NewEvent

    try:
        found = run_anomalies(store, run_id)
        if found:
            store.events.append(
                RunId(run_id),
                [NewEvent(EventType.ANOMALY_DETECTED, NodeId(a.node_id), a.to_json()) for a in found],
            )
        return found
    except Exception as exc:  # analytics must never break the recording of a run
        _log.warning("run %s: anomaly detection failed: %s", run_id, exc)
        return []
