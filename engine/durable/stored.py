"""Reading a durable run back from the store: its events, node states and outputs, whoever runs it.

`StoredRun` is a `RunSource` over the store, so `RunHandle(StoredRun(...))` follows a run that another process
(or a coordinator started by a process that is gone) runs: the same `events()`/`result()` API as a live run.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from engine.durable.errors import ResultNotFoundError
from engine.durable.results import ResultStore
from engine.execution.events import Event, EventType
from engine.execution.result import NodeError, NodeResult, RunResult
from engine.execution.status import NodeStatus, RunStatus

#: How often a `StoredRun` looks at the store while it waits.
POLL_S = 0.2


def event_from_row(row: Any) -> Event:
    """An engine `Event` from a stored event row."""
    payload = dict(row.payload or {})
    attempt = payload.get("attempt")
    return Event(
        run_id=row.run_id,
        seq=row.seq,
        type=EventType(row.type),
        node=row.node_id,
        attempt=attempt if isinstance(attempt, int) else None,
        time=row.created_at.timestamp(),
        payload=payload,
    )


def plain_json(value: Any) -> Any:
    """A JSON-compatible form of an output value (tables and arrays as lists, other objects as their repr)."""
    from engine.execution.events import _jsonable

    for name in ("to_pylist", "tolist"):
        method = getattr(value, name, None)
        if callable(method):
            return _jsonable(method())
    return _jsonable(value)


def run_document(store: Any, run: Any) -> dict[str, Any] | None:
    """The workflow document a run executes (inline, or its stored workflow version)."""
    if run.document is not None:
        return dict(run.document)
    if run.workflow_id is not None and run.workflow_version is not None:
        return dict(store.workflows.get_version(run.workflow_id, run.workflow_version).document)
    return None


def stored_outputs(store: Any, results: ResultStore, run_id: str) -> dict[str, Any]:
    """The workflow outputs of a run, read from the result store through its document's `outputs`.

    Outputs whose node result is not stored are left out (e.g. a run that has not finished).
    """
    run = store.runs.get(run_id)
    document = run_document(store, run) or {}
    outputs: dict[str, Any] = {}
    for name, ref in dict(document.get("outputs", {})).items():
        ref = str(ref)
        if ref.startswith("$inputs."):
            key = ref[len("$inputs.") :]
            if key in run.inputs:
                outputs[name] = run.inputs[key]
            continue
        node, _, port = ref.partition(".")
        try:
            values = results.get(run_id, node, (port,) if port else None)
        except ResultNotFoundError:
            continue
        if port:
            outputs[name] = values[port]
        elif len(values) == 1:
            outputs[name] = next(iter(values.values()))
    return outputs


def node_results(store: Any, run_id: str) -> dict[str, NodeResult]:
    """Each node's current state (its last attempt), with the number of attempts recorded for it."""
    rows = store.node_runs.list(run_id)
    out: dict[str, NodeResult] = {}
    first_start: dict[str, float] = {}
    for row in rows:
        if row.started_at is not None:
            first_start.setdefault(row.node_id, row.started_at.timestamp())
        error = None
        if row.error:
            err = dict(row.error)
            error = NodeError(row.node_id, row.attempt, str(err.get("type", "")), str(err.get("message", "")))
        try:
            status = NodeStatus(row.status)
        except ValueError:
            status = NodeStatus.FAILED
        out[row.node_id] = NodeResult(
            row.node_id,
            row.node_type,
            status,
            row.attempt,
            first_start.get(row.node_id),
            row.finished_at.timestamp() if row.finished_at else None,
            error,
        )
    return out


class StoredRun:
    """A `RunSource` that reads a run from the store (see the module docstring)."""

    def __init__(self, store: Any, results: ResultStore, run_id: str) -> None:
        self.store = store
        self.results = results
        self.run_id = run_id

    def _final(self) -> bool:
        return RunStatus(self.store.runs.get(self.run_id).status).is_final

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Stored events after `after`, waiting up to `timeout` s for one; and whether the run has ended."""
        deadline = time.monotonic() + timeout
        while True:
            finished = self._final()
            rows = self.store.events.read(self.run_id, after=after, limit=5000)
            if rows or finished or time.monotonic() >= deadline:
                return [event_from_row(r) for r in rows], finished and not rows
            time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.0)))

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end (as recorded in the store) and build its result from the store."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._final():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"run {self.run_id!r} did not finish within {timeout} s; call result() again"
                )
            time.sleep(POLL_S)
        run = self.store.runs.get(self.run_id)
        status = RunStatus(run.status)
        document = run_document(self.store, run) or {}
        return RunResult(
            run_id=self.run_id,
            workflow=str(document.get("name", "")),
            status=status,
            outputs=stored_outputs(self.store, self.results, self.run_id)
            if status is RunStatus.SUCCEEDED
            else {},
            nodes=node_results(self.store, self.run_id),
            started_at=run.started_at.timestamp() if run.started_at else None,
            finished_at=run.finished_at.timestamp() if run.finished_at else None,
        )

    def cancel(self) -> None:
        """Record the run as cancelled (its coordinator, if alive, is asked separately by the caller)."""
        from engine.store import ACTIVE_STATUSES, RunStateError

        with contextlib.suppress(RunStateError):  # already finished: nothing to cancel
            self.store.runs.update_status(self.run_id, "cancelled", only_from=ACTIVE_STATUSES)
