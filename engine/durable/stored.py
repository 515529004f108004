"""Reading a durable run back from the store: its events, node states and outputs, whoever runs it.

`StoredRun` is a `RunSource` over the store, so `RunHandle(StoredRun(...))` follows a run that another process
(or a coordinator started by a process that is gone) runs: the same `events()`/`result()` API as a live run.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.durable.errors import ResultNotFoundError
from engine.durable.results import ResultStore
from engine.execution.events import Event
from engine.execution.result import NodeError, NodeResult, RunResult
from nodes.ids import RunId
from nodes.skip import is_skip
from nodes.states import EventType, NodeStatus, RunStatus

#: How often a `StoredRun` looks at the store while it waits.
POLL_S = 0.2

#: How many of a run's first events are read to find its `run.started` (queued, started, ...).
MERGED_LOOKAHEAD = 8

if TYPE_CHECKING:
    from engine.store import Store


def plain_json(value: Any) -> Any:
    """A JSON-compatible form of an output value (tables and arrays as lists, other objects as their repr)."""
    from engine.execution.events import _jsonable

    for name in ("to_pylist", "tolist"):
        method = getattr(value, name, None)
        if callable(method):
            return _jsonable(method())
    return _jsonable(value)


def run_document(store: Store, run: Any) -> dict[str, Any] | None:
    """The workflow document a run executes (inline, or its stored workflow version)."""
    if run.document is not None:
        return dict(run.document)
    if run.workflow_id is not None and run.workflow_version is not None:
        return dict(store.workflows.get_version(run.workflow_id, run.workflow_version).document)
    return None


@dataclass(frozen=True)
class StoredOutputs:
    """A run's workflow outputs as stored: the values, and the names of the outputs whose node was skipped
    (sorted)."""

    values: dict[str, Any]
    skipped: tuple[str, ...] = ()


def read_outputs(store: Store, results: ResultStore, run_id: RunId) -> StoredOutputs:
    """The workflow outputs of a run, read from the result store through its document's `outputs`.

    An output whose node was skipped (its latest attempt is `skipped`, or the port it reads carries `SKIP`)
    has no value and is listed in `skipped`. Outputs whose node result is not stored otherwise are left out
    (e.g. a run that has not finished). An output reading a workflow input the run was not given is that
    input's default.
    """
    run = store.runs.get(run_id)
    document = run_document(store, run) or {}
    outputs: dict[str, Any] = {}
    skipped: list[str] = []
    skipped_nodes: set[str] | None = None  # read once, and only when a result is missing
    merged: dict[str, str] | None = None  # likewise
    for name, ref in dict(document.get("outputs", {})).items():
        ref = str(ref)
        if ref.startswith("$inputs."):
            key = ref[len("$inputs.") :]
            declared = dict(document.get("inputs") or {}).get(key)
            if key in run.inputs:
                outputs[name] = run.inputs[key]
            elif isinstance(declared, dict) and "default" in declared:
                outputs[name] = declared["default"]
            continue
        node, _, port = ref.partition(".")
        try:
            values = results.get(run_id, node, (port,) if port else None)
        except ResultNotFoundError:
            if merged is None:
                merged = merged_nodes(store, run_id)
            node = merged.get(node, node)  # a duplicate the compiler merged into an identical node
            try:
                values = results.get(run_id, node, (port,) if port else None)
            except ResultNotFoundError:
                if skipped_nodes is None:
                    skipped_nodes = _skipped_nodes(store, run_id)
                if node in skipped_nodes:
                    skipped.append(name)
                continue
        if port:
            value = values[port]
        elif len(values) == 1:
            value = next(iter(values.values()))
        else:
            continue
        if is_skip(value):
            skipped.append(name)
        else:
            outputs[name] = value
    return StoredOutputs(outputs, tuple(sorted(skipped)))


def stored_outputs(store: Store, results: ResultStore, run_id: RunId) -> dict[str, Any]:
    """The values of a run's workflow outputs (see `read_outputs`; skipped outputs are left out)."""
    return read_outputs(store, results, run_id).values


def merged_nodes(store: Store, run_id: RunId) -> dict[str, str]:
    """The run's document nodes that the compiler merged into an identical node, which computes their values
    (`engine.compile.optimize.deduplicate`): dropped id -> kept id, as the run's `run.started` event records."""
    for event in store.events.read(run_id, limit=MERGED_LOOKAHEAD):
        if event.type == EventType.RUN_STARTED:
            return {str(k): str(v) for k, v in dict(event.payload.get("merged") or {}).items()}
    return {}


def _skipped_nodes(store: Store, run_id: RunId) -> set[str]:
    """The nodes of a run whose latest attempt was skipped."""
    latest: dict[str, str] = {}
    for row in store.node_runs.list(run_id):
        latest[row.node_id] = row.status
    return {node for node, status in latest.items() if status == NodeStatus.SKIPPED}


def node_results(store: Store, run_id: RunId) -> dict[str, NodeResult]:
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

    def __init__(self, store: Store, results: ResultStore, run_id: RunId) -> None:
        self.store = store
        self.results = results
        self.run_id = run_id

    def _final(self) -> bool:
        return RunStatus(self.store.runs.get(self.run_id).status).is_final

    def recorded_failed(self) -> bool:
        """True when the store records the run as failed."""
        return RunStatus(self.store.runs.get(self.run_id).status) is RunStatus.FAILED

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Stored events after `after`, waiting up to `timeout` s for one; and whether the run has ended."""
        deadline = time.monotonic() + timeout
        while True:
            finished = self._final()
            events = self.store.events.read(self.run_id, after=after, limit=5000)
            if events or finished or time.monotonic() >= deadline:
                return events, finished and not events
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
        outputs = (
            read_outputs(self.store, self.results, self.run_id)
            if status is RunStatus.SUCCEEDED
            else StoredOutputs({})
        )
        return RunResult(
            run_id=self.run_id,
            workflow=str(document.get("name", "")),
            status=status,
            outputs=outputs.values,
            nodes=node_results(self.store, self.run_id),
            started_at=run.started_at.timestamp() if run.started_at else None,
            finished_at=run.finished_at.timestamp() if run.finished_at else None,
            skipped_outputs=outputs.skipped,
        )

    def cancel(self) -> None:
        """Record the run as cancelled (its coordinator, if alive, is asked separately by the caller)."""
        from engine.store import RunStateError

        with contextlib.suppress(RunStateError):  # already finished: nothing to cancel
            self.store.runs.update_status(self.run_id, RunStatus.CANCELLED, only_from=RunStatus.active())
