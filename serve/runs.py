"""Starting runs from the API without owning them.

`RunLauncher` is the small interface the routes use. The server uses `DurableRunLauncher`: it validates the
document and inputs (422 with diagnostics before anything is recorded) and asks the engine's `DurableRunner`
to record the run (idempotently: a repeated `Idempotency-Key` returns the first run and starts nothing) and
execute it; the engine's own sink appends every event to the store and keeps run and node status and outputs
current, its coordinator heartbeats the run, and the recovery sweep resumes it if that coordinator dies.
Every API replica therefore answers from the store alone.

`EngineRunLauncher` is the fallback for an engine without `engine.durable`: it calls `engine.submit` with this
module's `StoreEventSink` and records the outputs and final event from a small finisher thread (final event
last, so a client that sees `run.succeeded` finds the outputs); such runs are not resumed after a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.models import Run
    from nodes import Catalog

log = logging.getLogger("rayweave.serve.runs")

_RUN_FINAL = frozenset({"run.succeeded", "run.failed", "run.cancelled"})
_NODE_DONE = {
    "node.succeeded": "succeeded",
    "node.failed": "failed",
    "node.cancelled": "cancelled",
    "node.retrying": "failed",
}
_NODE_INSTANT = {"node.cached": "cached", "node.skipped": "skipped"}


@dataclass(frozen=True)
class LaunchedRun:
    """The stored run and whether this request created it (False: an idempotent repeat)."""

    run: Run
    created: bool


class RunLauncher(Protocol):
    """What the API needs to start and stop runs."""

    def launch(
        self,
        *,
        owner: str,
        document: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> LaunchedRun:
        """Record the run (idempotently) and start it; raises `InvalidWorkflowError` for bad documents/inputs."""

    def cancel(self, run_id: str) -> None:
        """Ask the engine to stop the run (a no-op for finished runs)."""

    def close(self) -> None:
        """Stop tracking runs (their execution continues where it runs)."""


class StoreEventSink:
    """An `EventSink` writing a run's events, node attempts and status to the store.

    Picklable (it carries the database URL, not the store) so the engine can ship it to the Ray coordinator;
    the store is opened lazily in whichever process writes.
    """

    def __init__(self, database_url: str, run_id: str, *, store: Store | None = None) -> None:
        self.database_url = database_url
        self.run_id = run_id
        self._store = store

    def __getstate__(self) -> dict[str, Any]:
        return {"database_url": self.database_url, "run_id": self.run_id, "_store": None}

    def _get_store(self) -> Store:
        if self._store is None:
            from engine.store import open_store

            self._store = open_store(self.database_url, upgrade=False)
        return self._store

    def write(self, events: Sequence[Any]) -> None:
        """Persist events; the run-final event is left to `record_final` (it must come after the outputs)."""
        store = self._get_store()
        batch = [e for e in events if str(e.type) not in _RUN_FINAL]
        if batch:
            store.events.append(self.run_id, [to_new_event(e) for e in batch])
        for event in batch:
            try:
                self._apply(store, event)
            except Exception as exc:  # status bookkeeping must never break the event log
                log.warning(
                    "run %s: could not record %s of node %s: %s", self.run_id, event.type, event.node, exc
                )

    def _apply(self, store: Store, event: Any) -> None:
        kind = str(event.type)
        at = _when(event)
        if kind == "run.started":
            store.runs.update_status(self.run_id, "running", only_from=["queued", "running"], at=at)
        elif kind == "node.started" and event.node:
            store.node_runs.start(
                self.run_id,
                event.node,
                attempt=event.attempt,
                node_type=str(event.payload.get("type", "")),
                at=at,
            )
        elif kind in _NODE_DONE and event.node:
            error = _error_of(event.payload)
            attempt = event.attempt or 1
            try:
                store.node_runs.finish(
                    self.run_id, event.node, attempt, status=_NODE_DONE[kind], error=error, at=at
                )
            except KeyError:
                store.node_runs.record(
                    self.run_id,
                    event.node,
                    attempt=attempt,
                    status=_NODE_DONE[kind],
                    error=error,
                    finished_at=at,
                )
        elif kind in _NODE_INSTANT and event.node:
            store.node_runs.record(
                self.run_id,
                event.node,
                attempt=event.attempt or 1,
                status=_NODE_INSTANT[kind],
                cache_hit=kind == "node.cached",
                started_at=at,
                finished_at=at,
            )


def to_new_event(event: Any) -> Any:
    """The store's `NewEvent` for an engine `Event` (its own sequence number kept)."""
    from engine.store import NewEvent

    data = event.to_json()
    payload = dict(data["payload"])
    payload["_attempt"] = data["attempt"]
    payload["_time"] = data["time"]
    return NewEvent(
        type=data["type"], node_id=data["node"], payload=payload, created_at=_when(event), seq=event.seq
    )


def event_json(row: Any) -> dict[str, Any]:
    """The API form of a stored event: `{run_id, seq, type, node, attempt, time, payload}`."""
    payload = dict(row.payload or {})
    # Events written by this module carry `_attempt`/`_time`; the engine's durable sink keeps `attempt`.
    attempt = payload.pop("_attempt", None)
    if attempt is None:
        attempt = payload.get("attempt")
    at = payload.pop("_time", None)
    return {
        "run_id": row.run_id,
        "seq": row.seq,
        "type": row.type,
        "node": row.node_id,
        "attempt": attempt,
        "time": at if at is not None else row.created_at.timestamp(),
        "payload": payload,
    }


def is_final_event(kind: str) -> bool:
    """True for the event type that ends a run."""
    return kind in _RUN_FINAL


def _when(event: Any) -> datetime | None:
    return datetime.fromtimestamp(event.time, UTC) if getattr(event, "time", None) else None


def _error_of(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    error = payload.get("error")
    if error is None:
        return None
    if isinstance(error, Mapping):
        return {k: v for k, v in error.items() if k != "traceback"}
    return {"message": str(error)}


class EngineRunLauncher:
    """Starts runs with `engine.submit` (Ray or in-process executor) and records them through the store."""

    def __init__(self, store: Store, catalog: Catalog, settings: Any, *, executor: str = "ray") -> None:
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.executor = executor
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()

    def launch(
        self,
        *,
        owner: str,
        document: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> LaunchedRun:
        """See `RunLauncher.launch`."""

        def record() -> Any:
            return self.store.runs.create(
                workflow_id=workflow_id,
                workflow_version=workflow_version,
                document=None if workflow_id else dict(document),
                inputs=inputs,
                owner=owner,
                idempotency_key=idempotency_key,
            )

        # A repeated Idempotency-Key is answered from the store (the first run, or a conflict) without compiling.
        repeat = idempotency_key is not None and self.store.runs.get_by_idempotency_key(
            owner, idempotency_key
        )
        prepared = None if repeat else self._prepare(document, inputs)
        created = record()
        if not created.created:
            return LaunchedRun(created.run, False)
        plan, values = prepared or self._prepare(document, inputs)
        self._start(created.run, plan, values)
        return LaunchedRun(created.run, True)

    def _prepare(self, document: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        from engine.compile import compile_workflow, validate
        from engine.errors import WorkflowInputError
        from engine.execution.api import resolve_inputs
        from serve.errors import InvalidWorkflowError

        diagnostics = [d for d in validate(dict(document), self.catalog) if d.severity == "error"]
        if diagnostics:
            raise InvalidWorkflowError(
                f"workflow {document.get('name', '?')!r} has {len(diagnostics)} error(s); "
                "fix them (POST /v1/workflows/validate shows them without running)",
                [d.to_json() for d in diagnostics],
            )
        plan = compile_workflow(dict(document), self.catalog)
        try:
            values = resolve_inputs(plan, inputs)
        except WorkflowInputError as exc:
            raise InvalidWorkflowError(
                str(exc), [{"code": "inputs", "severity": "error", "message": str(exc), "field": "inputs"}]
            ) from None
        return plan, values

    def _start(self, run: Run, plan: Any, values: Mapping[str, Any]) -> None:
        from engine.execution.api import submit

        sink = StoreEventSink(self.settings.resolved_database_url, run.id, store=self.store)
        try:
            handle = submit(
                plan, values, settings=self.settings, executor=self.executor, run_id=run.id, sink=sink
            )
        except Exception as exc:
            from serve.errors import UnavailableError

            self.store.runs.update_status(
                run.id, "failed", error={"type": type(exc).__name__, "message": str(exc)}
            )
            raise UnavailableError(
                f"run {run.id!r} was recorded but the engine could not start it ({type(exc).__name__}: {exc}); "
                "it is marked failed — check that Ray is reachable (GET /v1/ready) and submit again"
            ) from exc
        with self._lock:
            self._handles[run.id] = handle
        threading.Thread(
            target=self._finish, args=(run.id, handle), name=f"rayweave-finish-{run.id}", daemon=True
        ).start()

    def _finish(self, run_id: str, handle: Any) -> None:
        try:
            result = handle.result()
            final = [
                e
                for e in handle.events(after=max(self.store.events.last_seq(run_id), 0))
                if e.type.is_run_final
            ]
            record_final(self.store, run_id, result, final)
        except Exception:
            log.exception("run %s: could not record its end", run_id)
        finally:
            with self._lock:
                self._handles.pop(run_id, None)

    def cancel(self, run_id: str) -> None:
        """See `RunLauncher.cancel`. A run launched by another replica is stopped through its status."""
        with self._lock:
            handle = self._handles.get(run_id)
        if handle is not None:
            handle.cancel()
            return
        if self.executor == "ray" and self._cancel_on_coordinator(run_id):
            return
        from engine.store import RunStateError

        try:
            self.store.runs.update_status(run_id, "cancelled", only_from=["queued", "running"])
        except RunStateError:
            return

    @staticmethod
    def _cancel_on_coordinator(run_id: str) -> bool:
        """Cancel a run another replica launched, through the cluster's named coordinator actor."""
        try:
            import ray

            from engine.execution.coordinator import COORDINATOR_NAME, RAYWEAVE_NAMESPACE

            coordinator = ray.get_actor(COORDINATOR_NAME, namespace=RAYWEAVE_NAMESPACE)
            ray.get(coordinator.cancel.remote(run_id), timeout=10)
            return True
        except Exception as exc:  # the coordinator may not hold the run (restarted): fall back to the store
            log.info(
                "run %s: coordinator could not cancel it (%s); cancelling through the store", run_id, exc
            )
            return False

    def close(self) -> None:
        """Forget the handles; the runs go on in their coordinators."""
        with self._lock:
            self._handles.clear()


def record_final(store: Store, run_id: str, result: Any, final_events: Sequence[Any]) -> None:
    """Write a finished run's outputs and status, then its final event (in that order; see module docstring)."""
    from engine.execution.result import _jsonable, _plain

    status = str(result.status)
    outputs = {k: _jsonable(_plain(v)) for k, v in result.outputs.items()}
    errors = [e.to_json() for e in result.errors]
    error = None
    if errors:
        error = {"nodes": [{k: v for k, v in e.items() if k != "traceback"} for e in errors]}
    store.runs.update_status(run_id, status, outputs=outputs if status == "succeeded" else None, error=error)
    if final_events:
        store.events.append(run_id, [to_new_event(e) for e in final_events])


class DurableRunLauncher(EngineRunLauncher):
    """Starts runs through the engine's `DurableRunner` (engine.durable): node results are written to the
    durable result store, the engine's own sink records events, status and outputs, the coordinator heartbeats
    the run, and the recovery sweep resumes it if its coordinator dies. The API only validates and asks."""

    def __init__(self, store: Store, catalog: Catalog, settings: Any, *, executor: str = "ray") -> None:
        from engine.durable import DurableRunner

        super().__init__(store, catalog, settings, executor=executor)
        self.runner = DurableRunner(settings, store=store, executor=executor, catalog=catalog)

    def launch(
        self,
        *,
        owner: str,
        document: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> LaunchedRun:
        """See `RunLauncher.launch`."""
        repeat = idempotency_key is not None and self.store.runs.get_by_idempotency_key(
            owner, idempotency_key
        )
        if not repeat:
            self._prepare(document, inputs)  # 422 with diagnostics before anything is recorded
        try:
            launched = self.runner.launch(
                None if workflow_id is not None else dict(document),
                inputs,
                owner=owner,
                idempotency_key=idempotency_key,
                workflow_id=workflow_id,
                workflow_version=workflow_version,
            )
        except (KeyError, ValueError):
            raise  # store errors (404, 409) are answered by the problem handlers
        except Exception as exc:
            from serve.errors import UnavailableError

            raise UnavailableError(
                f"the engine could not start the run ({type(exc).__name__}: {exc}); check that Ray is "
                "reachable (GET /v1/ready) and submit again"
            ) from exc
        if launched.created:
            with self._lock:
                self._handles[launched.run.id] = launched.handle
            threading.Thread(
                target=self._forget, args=(launched.run.id, launched.handle), daemon=True
            ).start()
        return LaunchedRun(launched.run, launched.created)

    def _forget(self, run_id: str, handle: Any) -> None:
        # Only to drop the handle when the run ends; the engine records the outcome itself.
        try:
            handle.result()
        except Exception as exc:
            log.debug("run %s ended with %s", run_id, exc)
        finally:
            with self._lock:
                self._handles.pop(run_id, None)


def launcher_for(store: Store, catalog: Catalog, settings: Any, *, executor: str) -> RunLauncher:
    """The durable launcher when the engine offers durable runs (engine.durable), else the plain one."""
    try:
        return DurableRunLauncher(store, catalog, settings, executor=executor)
    except ImportError:
        return EngineRunLauncher(store, catalog, settings, executor=executor)
