"""Run lineage as OpenLineage run events (https://openlineage.io, spec 2-0-2), posted off the run's hot path.

A durable run's sink (`engine.durable.sink.StoreEventSink`) hands its lifecycle to `RunLineage`: `START` when
the run starts, `COMPLETE`, `FAIL` or `ABORT` when it ends. Each event names

- the job: namespace `RAYWEAVE_OPENLINEAGE_NAMESPACE` (default `rayweave`), name the workflow's name;
- the run: its id as a UUID (rayweave run ids are 32 hex digits, a UUID already; another id is mapped to a
  stable UUID 5), with a `rayweave` run facet giving the run id, workflow id and version;
- the datasets its data nodes read and write, from the workflow document and the run's inputs: `read_csv`,
  `read_parquet` and `sql_files` (inputs), `write_parquet` (outputs), each a file dataset (namespace `file`,
  name its path) where the path is a constant or a workflow input.

Events are posted as JSON to `RAYWEAVE_OPENLINEAGE_URL` by one background thread per process
(`LineageEmitter`): a run never waits for the lineage endpoint, and a slow, failing or absent endpoint never
fails a run (each event is tried `ATTEMPTS` times with backoff, then dropped with a warning in the log).
"""

from __future__ import annotations

import atexit
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nodes.states import RunStatus

_log = logging.getLogger("rayweave.lineage")

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMA_URL = "https://rayweave.dev/openlineage/RayweaveRunFacet.json"
PRODUCER = "https://rayweave.dev/openlineage"
DEFAULT_NAMESPACE = "rayweave"  # not Ray: an OpenLineage namespace
#: How often an event is tried, and the seconds before each retry.
ATTEMPTS = 4
BACKOFF_S = (0.5, 1.0, 2.0)
TIMEOUT_S = 5.0
#: Events waiting to be posted, at most (more are dropped with a warning: lineage never holds a run back).
QUEUE_SIZE = 10_000

#: The run states an OpenLineage event reports the end of a run with.
END_EVENT = {RunStatus.SUCCEEDED: "COMPLETE", RunStatus.FAILED: "FAIL", RunStatus.CANCELLED: "ABORT"}
#: Data nodes: node type (without its major version) -> (input port holding a path, or a dict of paths; role).
DATA_NODES: dict[str, tuple[str, str]] = {
    "builtin/read_csv": ("path", "input"),
    "builtin/read_parquet": ("path", "input"),
    "builtin/sql_files": ("files", "input"),
    "builtin/write_parquet": ("path", "output"),
}


def lineage_run_id(run_id: str) -> str:
    """The OpenLineage run id (a UUID) of a rayweave run."""
    try:
        return str(uuid.UUID(hex=run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rayweave:run:{run_id}"))


def datasets(
    document: Mapping[str, Any], inputs: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input and output datasets of a workflow document run with `inputs` (see the module docstring)."""
    found: dict[str, dict[str, dict[str, Any]]] = {"input": {}, "output": {}}
    for node in dict(document.get("nodes") or {}).values():
        if not isinstance(node, Mapping):
            continue
        node_type = str(node.get("type", "")).partition("@")[0]
        if node_type not in DATA_NODES:
            continue
        port, role = DATA_NODES[node_type]
        value = _bound(node, port, inputs)
        paths = list(value.values()) if isinstance(value, Mapping) else [value]
        for path in paths:
            if isinstance(path, str) and path:
                found[role][path] = {"namespace": "file", "name": path}  # not Ray
    return list(found["input"].values()), list(found["output"].values())


def _bound(node: Mapping[str, Any], port: str, inputs: Mapping[str, Any]) -> Any:
    """The value bound to `port` of a node when it is known before the run: a constant (`{"value": ...}` or
    a param) or a workflow input (`$inputs.name`); None when another node's output feeds it."""
    wired = dict(node.get("in") or {}).get(port)
    if isinstance(wired, Mapping) and "value" in wired:
        return wired["value"]
    if isinstance(wired, str) and wired.startswith("$inputs."):
        return inputs.get(wired.removeprefix("$inputs."))
    return dict(node.get("params") or {}).get(port)


def run_event(
    event_type: str,
    *,
    run_id: str,
    at: datetime,
    job_name: str,
    namespace: str = DEFAULT_NAMESPACE,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One OpenLineage `RunEvent` as a JSON-ready dict."""
    facet: dict[str, Any] = {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA_URL, "runId": run_id}
    if workflow_id is not None:
        facet["workflowId"] = workflow_id
        facet["workflowVersion"] = workflow_version
    return {
        "eventType": event_type,
        "eventTime": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": lineage_run_id(run_id), "facets": {"rayweave": facet}},
        "job": {"namespace": namespace, "name": job_name},  # not Ray
        "inputs": list(inputs or []),
        "outputs": list(outputs or []),
    }


class RunLineage:
    """The lineage of one run: reads what it needs from the store once, at the start, and posts each event
    through the process's `LineageEmitter`. Every method swallows its own failures (logged)."""

    def __init__(self, url: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.url = url
        self.namespace = namespace or DEFAULT_NAMESPACE
        self._job: dict[str, Any] | None = None

    def started(self, store: Any, run_id: str, at: datetime) -> None:
        """Post `START` for the run (its job and datasets read from the store now)."""
        self._post(store, run_id, "START", at)

    def ended(self, store: Any, run_id: str, status: str, at: datetime) -> None:
        """Post the run's end: `COMPLETE`, `FAIL` or `ABORT`."""
        event_type = END_EVENT.get(RunStatus(status))
        if event_type is not None:
            self._post(store, run_id, event_type, at)

    def _post(self, store: Any, run_id: str, event_type: str, at: datetime) -> None:
        try:
            job = self._job or self._describe(store, run_id)
            self._job = job
            emitter_for(self.url).emit(
                run_event(event_type, run_id=run_id, at=at, namespace=self.namespace, **job)  # not Ray
            )
        except Exception as exc:  # lineage must never fail a run
            _log.warning("run %s: no OpenLineage %s event: %s", run_id, event_type, exc)

    @staticmethod
    def _describe(store: Any, run_id: str) -> dict[str, Any]:
        from engine.durable.stored import run_document

        run = store.runs.get(run_id)
        document = run_document(store, run) or {}
        ins, outs = datasets(document, dict(run.inputs or {}))
        return {
            "job_name": str(document.get("name") or run.workflow_id or "inline"),
            "workflow_id": run.workflow_id,
            "workflow_version": run.workflow_version,
            "inputs": ins,
            "outputs": outs,
        }


class LineageEmitter:
    """Posts OpenLineage events to `url` from one daemon thread, in order, with retries (module docstring)."""

    def __init__(self, url: str, *, attempts: int = ATTEMPTS, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self.attempts = attempts
        self.timeout_s = timeout_s
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def emit(self, event: Mapping[str, Any]) -> None:
        """Queue an event; returns at once (drops it, logged, when the queue is full)."""
        try:
            self._queue.put_nowait(dict(event))
        except queue.Full:
            _log.warning("OpenLineage: %d events waiting for %s; dropping one", QUEUE_SIZE, self.url)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="rayweave-openlineage", daemon=True)
                self._thread.start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event was posted or given up; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                event = self._queue.get()
                try:
                    self._send(client, event)
                finally:
                    self._queue.task_done()

    def _send(self, client: Any, event: dict[str, Any]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.post(self.url, json=event)
                if response.status_code < 400:
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the endpoint refuses this event: retrying will not help
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                time.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
        _log.warning(
            "OpenLineage: %s event of run %s not accepted by %s (%s); dropped",
            event.get("eventType"),
            event.get("run", {}).get("runId"),
            self.url,
            problem,
        )


@functools.cache
def emitter_for(url: str) -> LineageEmitter:
    """The process's emitter for `url` (one thread per endpoint, made on first use); queued events get a short
    chance to leave when the process exits."""
    emitter = LineageEmitter(url)
    atexit.register(emitter.flush, 2.0)
    return emitter
