"""`StoreEventSink`: the executor's `EventSink` that makes a run durable in the store.

The coordinator (or the in-process executor) hands every event of a run to its sink, in order and from one
thread. This sink appends the events to the store and keeps the run row and the node-run rows (one per attempt:
status, timings, cache hit, error, result location) in step with them. It also heartbeats the run from the
process it lives in — the coordinator's — through that process's heartbeat thread (`engine.durable.heartbeat`),
so the recovery sweep can tell a live run from an orphaned one: when the coordinator dies, its heartbeats stop.

What it writes always fits the store: event payloads (with the node errors, log lines and partial outputs they
carry) are `sanitized` (a NUL character or lone surrogate becomes U+FFFD, a part nested too deep a note), and a
run whose workflow outputs break the limits of the JSON the store keeps (`engine.jsonlimits`; e.g. an output
of a cached node, which no task checks) ends `failed`, naming the output, node and port, instead of never
recording its end. So does a run one of whose workflow outputs has no stored value at its end (a node whose
result was never written): a run never says `succeeded` with an output silently missing.

The sink is pickled into the coordinator with the run's options; only its configuration travels (the database
connection and the heartbeat are set up in the process that uses them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.durable.results import ResultStore
from engine.execution.events import Event
from engine.execution.start import RESUMED_LEVEL
from engine.jsonlimits import JsonLimitError, sanitized, storable
from nodes.ids import NodeId, NodeTypeId, RunId
from nodes.sandbox.errors import LIMIT_ERRORS
from nodes.states import EventType, NodeStatus, RunStatus

if TYPE_CHECKING:
    from engine.store import NewEvent, Store

_log = logging.getLogger("rayweave.durable")

#: Events that begin a run (a resumed run begins again).
_RUN_BEGIN = frozenset({EventType.RUN_QUEUED, EventType.RUN_STARTED})
#: Events that end a node attempt without a result, and the status each one records.
_NODE_END = MappingProxyType(
    {EventType.NODE_FAILED: NodeStatus.FAILED, EventType.NODE_CANCELLED: NodeStatus.CANCELLED}
)
#: How often appending a batch of events is tried before the batch is given up.
APPEND_ATTEMPTS = 3
#: Outputs bigger than this (as JSON) are not copied into the run row.
MAX_JSON_OUTPUT_BYTES = 64 * 1024
#: How many databases' stores one process keeps open for its sinks (a coordinator serves one installation's
#: runs; a test session many): the least recently used beyond it is closed.
MAX_SHARED_STORES = 8

_shared_stores: OrderedDict[str, Store] = OrderedDict()
_shared_lock = threading.Lock()


def shared_store(database_url: str) -> Store:
    """This process's store of `database_url` for the sinks of every run on it: one connection pool per
    database, not one per run (sixteen durable runs in one coordinator held 82 PostgreSQL connections)."""
    with _shared_lock:
        store = _shared_stores.pop(database_url, None)
        if store is None:
            from engine.store import open_store

            store = open_store(database_url, upgrade=False)
        _shared_stores[database_url] = store  # the most recently used last
        while len(_shared_stores) > MAX_SHARED_STORES:
            # A sink still holding it goes on working: a closed engine opens new connections when used.
            _shared_stores.popitem(last=False)[1].close()
        return store


@dataclass(frozen=True)
class _Outputs:
    """A succeeded run's outputs as the run row keeps them, or why they cannot be kept (`problem`, naming the
    `node` whose output it is)."""

    values: dict[str, Any] | None = None
    skipped: tuple[str, ...] | None = None
    problem: str = ""
    node: str = ""


def _missing_output(name: str, node: str, port: str) -> str:
    """Why a run whose workflow output `name` (reading `port` of `node`) has no stored value cannot succeed."""
    if node == "$inputs":
        where = f"input {port!r}"
    else:
        where = f"node {node!r}, port {port!r}" if port else f"node {node!r}"
    return (
        f"workflow output {name!r} ({where}) has no stored value although every node finished: the run "
        "cannot give it, so it is recorded as failed rather than succeeded without it. This is a defect of "
        "rayweave (the node's result was never written to the result store): report it with this run's id, "
        "and start the run again once it is fixed"
    )


def coordinator_label() -> str:
    """Who owns a run right now: `host:pid` of this process (recorded as the run's coordinator)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class StoreEventSink:
    """Persists a run's events and states to the store (see the module docstring).

    `seq_offset`: added to the executor's sequence numbers, so the events of a resumed run continue the stored
    sequence (the executor numbers each execution from 1). `heartbeat_s`: interval of the run's heartbeat.
    `outputs`: the names of the workflow outputs the run computes (all of its document's when None); each must
    have a stored value, or be skipped, for the run to succeed. `bus_url`: the event bus (`engine.bus`; empty:
    this process's in-process bus) that hears a notice (run id, last seq, type) after each stored batch.
    """

    def __init__(
        self,
        database_url: str,
        run_id: RunId,
        *,
        results: ResultStore | None = None,
        seq_offset: int = 0,
        heartbeat_s: float = 2.0,
        resumed: bool = False,
        outputs: Sequence[str] | None = None,
        lineage_url: str = "",
        lineage_namespace: str = "",
        bus_url: str = "",
    ) -> None:
        self.database_url = database_url
        self.bus_url = bus_url
        self.lineage_url = lineage_url
        self.lineage_namespace = lineage_namespace
        self.run_id = RunId(run_id)
        self.results = results
        self.seq_offset = seq_offset
        self.heartbeat_s = heartbeat_s
        self.resumed = resumed
        self.outputs = tuple(outputs) if outputs is not None else None
        self._init_local()

    def _init_local(self) -> None:
        self._store: Store | None = None
        self._outputs: _Outputs | None = None
        self._open: dict[str, int] = {}
        self._beats: Any = None
        self._beating = False
        self._finished = False
        self._lineage: Any = None
        self._bus_failed = False

    def __getstate__(self) -> dict[str, Any]:
        return {
            "database_url": self.database_url,
            "run_id": self.run_id,
            "results": self.results,
            "seq_offset": self.seq_offset,
            "heartbeat_s": self.heartbeat_s,
            "resumed": self.resumed,
            "outputs": self.outputs,
            "lineage_url": self.lineage_url,
            "lineage_namespace": self.lineage_namespace,
            "bus_url": self.bus_url,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("outputs", None)
        state.setdefault("lineage_url", "")
        state.setdefault("lineage_namespace", "")
        state.setdefault("bus_url", "")
        self.__dict__.update(state)
        self._init_local()

    @property
    def store(self) -> Store:
        """The store, this process's for the run's database (`shared_store`; the schema was upgraded by whoever
        made the run)."""
        if self._store is None:
            self._store = shared_store(self.database_url)
        return self._store

    # -- EventSink ----------------------------------------------------------------------------------

    def write(self, events: Sequence[Event]) -> None:
        """Append `events` to the store and apply the state changes they describe."""
        pending = [replace(e, payload=sanitized(dict(e.payload))) for e in events]
        for index, event in enumerate(pending):
            if event.type == EventType.RUN_SUCCEEDED:
                # Its outputs are read once what came before it is recorded (a skipped node, say).
                self._write(pending[:index])
                pending = [self._checked_success(event), *pending[index + 1 :]]
                break
        self._write(pending)

    def _write(self, events: Sequence[Event]) -> None:
        from engine.store import NewEvent

        if not events:
            return
        batch = [
            NewEvent.of(replace(e, seq=e.seq + self.seq_offset, payload=self._payload(e))) for e in events
        ]
        if self._append(batch):
            self._notify(batch)
        for event in events:
            try:
                self._apply(event)
            except Exception as exc:  # a bookkeeping problem must not kill the run; the events are stored
                _log.warning(
                    "run %s: could not record %s of node %s: %s", self.run_id, event.type, event.node, exc
                )

    def _notify(self, batch: Sequence[NewEvent]) -> None:
        """Tell the event bus the run's events up to the last of `batch` are stored (after the commit). Never
        fails the run: a bus that cannot take it is logged once, and subscribers find the events with their
        store poll. The in-process bus's notice also carries the events as a read returns them (`events`, each
        `Event.to_json()`: a notice stays JSON), so
        a live stream in this process sends them without reading them back (`serve.streams`); a broker's
        notice stays small (a message crosses the network to every replica), its subscribers read the store."""
        try:
            from engine.bus import InProcessBus, run_notice, run_topic, shared_bus

            bus, topic = shared_bus(self.bus_url), run_topic(self.run_id)
            notice = run_notice(self.run_id, int(batch[-1].seq or 0), str(batch[-1].type))
            # Only where a stream of this process may listen (not in a Ray coordinator, whose bus nobody hears).
            # The sink numbers every event (the executor's seq plus its offset).
            if isinstance(bus, InProcessBus) and bus.subscribed(topic):
                notice["events"] = [e.read_back(self.run_id, int(e.seq or 0)).to_json() for e in batch]
            bus.publish(topic, notice)
        except Exception as exc:
            if not self._bus_failed:
                self._bus_failed = True
                _log.warning("run %s: no notice on the event bus %r (%s)", self.run_id, self.bus_url, exc)

    def _append(self, batch: list[Any]) -> bool:
        """Store `batch`; whether it was stored."""
        from engine.store import DuplicateEventError

        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                self.store.events.append(self.run_id, batch)
                return True
            except DuplicateEventError:
                raise  # someone else numbers this run's events: two owners, which a claim must prevent
            except Exception as exc:
                # A database restart or a lock timeout must not fail the run: wait a little and try again; after
                # the last attempt the events are lost (the rows still get updated below) rather than the run.
                if attempt == APPEND_ATTEMPTS:
                    _log.error("run %s: could not store %d event(s): %s", self.run_id, len(batch), exc)
                    return False
                time.sleep(0.2 * attempt)
        return False

    def _checked_success(self, event: Event) -> Event:
        """`event` (`run.succeeded`), or, when the store cannot hold the run's outputs, the run's failure saying
        why (so the run row and the event log agree)."""
        self._outputs = self._json_outputs()
        if not self._outputs.problem:
            return event
        _log.error("run %s: %s", self.run_id, self._outputs.problem)
        payload = {
            **event.payload,
            "failed_nodes": [self._outputs.node] if self._outputs.node else [],
            "reason": self._outputs.problem,
        }
        return replace(event, type=EventType.RUN_FAILED, payload=payload)

    def _payload(self, event: Event) -> dict[str, Any]:
        payload = dict(event.payload)
        if self.resumed and event.type in _RUN_BEGIN:
            payload["resumed"] = True
        return payload

    def _apply(self, event: Event) -> None:
        kind = EventType(event.type)  # a member already, unless a caller built the event by hand
        at = datetime.fromtimestamp(event.time, UTC)
        final = kind.run_status
        if kind in _RUN_BEGIN:
            self._start_heartbeat()
            if kind == EventType.RUN_STARTED:
                self.store.runs.update_status(
                    self.run_id,
                    RunStatus.RUNNING,
                    only_from=RunStatus.active(),
                    coordinator=coordinator_label(),
                    at=at,
                )
                if self.lineage_url:
                    self._run_lineage().started(self.store, self.run_id, at)
        elif final is not None:
            self._finish_run(final, event, at)
            if final != RunStatus.CANCELLED:
                # After the final event: its executions against its workflow's history (engine.analytics.live).
                from engine.analytics.live import record_run_anomalies

                record_run_anomalies(self.store, self.run_id)
            if self.lineage_url:
                self._run_lineage().ended(self.store, self.run_id, final, at)
        elif event.node is not None:
            self._node_event(kind, event, at)

    def _run_lineage(self) -> Any:
        """The run's OpenLineage reporter (`engine.lineage.openlineage`): queues events, never blocks."""
        if self._lineage is None:
            from engine.lineage.openlineage import RunLineage

            self._lineage = RunLineage(self.lineage_url, self.lineage_namespace)
        return self._lineage

    def _finish_run(self, status: RunStatus, event: Event, at: datetime) -> None:
        from engine.store import RunStateError

        self.close()
        self._finished = True
        failed = list(event.payload.get("failed_nodes", []) or [])
        reason = event.payload.get("reason", "")
        error = (
            {"failed_nodes": failed, "reason": reason}
            if failed or (status == RunStatus.FAILED and reason)
            else None
        )
        kept = self._outputs if status == RunStatus.SUCCEEDED and self._outputs is not None else _Outputs()
        # Cancelled (or finished) from outside meanwhile: the stored final state stands.
        with contextlib.suppress(RunStateError):
            try:
                self.store.runs.update_status(
                    self.run_id,
                    status,
                    only_from=RunStatus.active(),
                    error=error,
                    outputs=kept.values,
                    skipped_outputs=kept.skipped,
                    at=at,
                )
            except RunStateError:
                raise
            except Exception as exc:
                if kept.values is None:
                    raise
                # Whatever the outputs hold, the run's end must be recorded: without them, failed, saying why.
                _log.error("run %s: could not store its outputs: %s", self.run_id, exc)
                self.store.runs.update_status(
                    self.run_id,
                    RunStatus.FAILED,
                    only_from=RunStatus.active(),
                    error={
                        "failed_nodes": [],
                        "reason": f"the run's outputs could not be stored ({type(exc).__name__}); the server "
                        "log has the details",
                    },
                    at=at,
                )

    def _json_outputs(self) -> _Outputs:
        """The run's outputs as JSON for the run row (readers of the row need no result store), and the names of
        its skipped outputs; an output whose JSON is bigger than `MAX_JSON_OUTPUT_BYTES` is left out (it stays
        in the result store). An output that breaks the JSON limits, or that has no stored value (and is not
        skipped), is a `problem` naming it."""
        if self.results is None:
            return _Outputs()
        from engine.durable.persist import unstorable_output
        from engine.durable.stored import read_outputs, run_document

        try:
            stored = read_outputs(self.store, self.results, self.run_id)
        except Exception as exc:  # the outputs stay readable from the result store
            _log.warning("run %s: could not read its outputs back: %s", self.run_id, exc)
            return _Outputs()

        def source(name: str) -> tuple[str, str]:
            document = run_document(self.store, self.store.runs.get(self.run_id)) or {}
            node, _, port = str(dict(document.get("outputs") or {}).get(name, "")).partition(".")
            return node, port

        for name in self._expected():
            if name not in stored.values and name not in stored.skipped:
                node, port = source(name)
                failed = "" if node == "$inputs" else node
                return _Outputs(problem=_missing_output(name, node, port), node=failed)
        outputs: dict[str, Any] = {}
        for name, value in stored.values.items():
            try:
                data = storable(value, name)
            except JsonLimitError as exc:
                node, port = source(name)
                return _Outputs(problem=str(unstorable_output([name], node, port, exc)), node=node)
            if len(json.dumps(data)) <= MAX_JSON_OUTPUT_BYTES:
                outputs[name] = data
        return _Outputs(outputs, stored.skipped)

    def _expected(self) -> tuple[str, ...]:
        """The workflow outputs the run computes (see `outputs` of the class)."""
        if self.outputs is not None:
            return self.outputs
        from engine.durable.stored import run_document

        document = run_document(self.store, self.store.runs.get(self.run_id)) or {}
        return tuple(dict(document.get("outputs") or {}))

    # -- node attempts ------------------------------------------------------------------------------

    def _node_event(self, kind: EventType, event: Event, at: datetime) -> None:
        node_runs = self.store.node_runs
        node = NodeId(str(event.node))
        node_type = NodeTypeId(str(event.payload.get("type", "")))
        if kind == EventType.NODE_STARTED:
            self._begin(node, node_type, at)
        elif kind == EventType.NODE_RETRYING:
            attempt = self._open.get(node) or self._begin(node, node_type, at)
            retry_error = {
                "type": event.payload.get("error", ""),
                "message": event.payload.get("message", ""),
            }
            node_runs.finish(self.run_id, node, attempt, status=NodeStatus.FAILED, error=retry_error, at=at)
            self._open.pop(node, 0)
            self._begin(node, node_type, at)
        elif kind == EventType.NODE_SUCCEEDED:
            attempt = self._open.pop(node, 0) or self._begin(node, node_type, at, keep=False)
            location = None
            if self.results is not None and self.results.exists(self.run_id, node):
                location = self.results.location(self.run_id, node)
            node_runs.finish(
                self.run_id, node, attempt, status=NodeStatus.SUCCEEDED, result_location=location, at=at
            )
        elif kind in _NODE_END:
            status = _NODE_END[kind]
            raw = event.payload.get("error")
            error = dict(raw) if isinstance(raw, dict) else None
            attempt = self._open.pop(node, 0)
            if not attempt:
                attempt = node_runs.start(
                    self.run_id, node, node_type=node_type, status=status, at=at
                ).attempt
            node_runs.finish(self.run_id, node, attempt, status=status, error=error, at=at)
            if error is not None and error.get("type") in LIMIT_ERRORS:
                self._audit_sandbox_kill(node, node_type, error, at)
        elif kind == EventType.NODE_SKIPPED:
            self._record(node, node_type, NodeStatus.SKIPPED, at)
        elif kind == EventType.NODE_CACHED and event.payload.get("level") != RESUMED_LEVEL:
            # A node a resumed run took from the result store keeps its earlier succeeded attempt; a real cache
            # hit is an attempt of its own that did not run.
            self._record(node, node_type, NodeStatus.CACHED, at, cache_hit=True)

    def _audit_sandbox_kill(
        self, node: NodeId, node_type: NodeTypeId, error: dict[str, Any], at: datetime
    ) -> None:
        """Audit a sandboxed node stopped at one of its limits (`nodes.sandbox`): the worker has no store, so
        the failure event it reports is audited here, where the run's events are recorded."""
        details = {"node": str(node), "node_type": str(node_type), "limit": error.get("type", "")}
        details["message"] = str(error.get("message", ""))[:500]
        self.store.audit.append(
            "sandbox",
            "sandbox.limit_exceeded",
            resource_type="run",
            resource_id=str(self.run_id),
            outcome="denied",
            details=details,
            at=at,
        )

    def _begin(self, node: NodeId, node_type: NodeTypeId, at: datetime, *, keep: bool = True) -> int:
        row = self.store.node_runs.start(self.run_id, node, node_type=node_type, at=at)
        if keep:
            self._open[node] = row.attempt
        return int(row.attempt)

    def _record(
        self, node: NodeId, node_type: NodeTypeId, status: str, at: datetime, *, cache_hit: bool = False
    ) -> None:
        row = self.store.node_runs.start(self.run_id, node, node_type=node_type, status=status, at=at)
        self.store.node_runs.finish(self.run_id, node, row.attempt, status=status, cache_hit=cache_hit, at=at)

    # -- heartbeat ----------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._beating or self._finished or self.heartbeat_s <= 0:
            return
        from engine.durable.heartbeat import Heartbeats

        self._beats = Heartbeats.shared(self.database_url, self.store, self.heartbeat_s, coordinator_label())
        # `rayweave runs cancel` (or the API) only writes the store: the coordinator learns it from a beat.
        self._beats.add(self.run_id, self._cancel_in_coordinator)
        self._beating = True

    def _cancel_in_coordinator(self) -> None:
        try:
            import ray

            ray.get_runtime_context().current_actor.cancel.remote(self.run_id)
        except Exception as exc:  # not inside the coordinator actor (in-process run): nothing to tell
            _log.info("run %s was cancelled in the store; no coordinator to stop here (%s)", self.run_id, exc)

    def close(self) -> None:
        """Stop the heartbeat (the run's final event does this too)."""
        if self._beats is not None:
            self._beats.discard(self.run_id)
