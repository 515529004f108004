"""MLflow tracking of ML nodes: one parent MLflow run per rayweave run, one nested run per node run.

Where to track comes from the node's context (`ctx.config`, filled from the installation's `Settings` by the
process that started the run: `mlflow.tracking_uri`, `mlflow.artifacts_uri`), never from the worker's
environment. What happens, per node run (`node_run`):

1. **The database**, when the tracking URI is SQLite, is created (MLflow's migrations) once, under an
   exclusive file lock beside it (`<db>.lock`): MLflow migrations racing from parallel workers fail. Each
   worker process does this once per URI.
2. **The experiment** is `rayweave/<workflow name>`, with its artifacts under `<artifacts uri>/<workflow>`;
   parallel creators rely on the tracking store's unique experiment names (the losers read the winner's).
3. **The parent run** of the rayweave run is created exactly once, however many node runs start at the same
   moment in however many processes: each candidate is offered to the Ray cluster's key-value store with
   put-if-absent (atomic in the GCS); the first one wins, the others delete their candidate and use the
   winner's. Outside Ray (a node called in-process), a lock of the process does the same.
4. **The node's run** is created nested under it (tag `mlflow.parentRunId`) with the lineage tags below,
   made the active MLflow run while the node logs, and ended FINISHED (FAILED when the node raised). The
   parent's end time moves with each node run that ends.

Lineage tags, on the parent and on every node run (the serving side reads these names):
`rayweave.run_id`, `rayweave.node_id` (node runs only; the node's key in the run's events, e.g.
`grid[3].train`), `rayweave.workflow`, `rayweave.workflow_version` (empty for a workflow that is not stored),
`rayweave.node_type`, `rayweave.role` (`workflow` or `node`), `rayweave.attempt` (node runs: the engine's
attempt number; a retried node leaves one MLflow run per attempt).

With a tracking server (an http(s) URI) and the default artifact root (a local `file:` URI, `{home}/mlartifacts`),
experiments are created without an artifact location: the server's own root serves every client. With a
database URI (SQLite, PostgreSQL, MySQL) the configured root is used: MLflow's own default is `./mlruns` of
whichever process creates the experiment.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nodes.context import NodeContext
from nodes.states import EventType
from rayweave_ml.errors import TrackingError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "TAG_NODE_ID",
    "TAG_NODE_TYPE",
    "TAG_ROLE",
    "TAG_RUN_ID",
    "TAG_WORKFLOW",
    "TAG_WORKFLOW_VERSION",
    "NodeRun",
    "Tracking",
    "client_for",
    "experiment_name",
    "node_run",
    "parent_run",
]

#: The keys of the node context's `config` (see `engine.execution.nodeconfig`).
TRACKING_URI_KEY = "mlflow.tracking_uri"
ARTIFACTS_URI_KEY = "mlflow.artifacts_uri"

TAG_RUN_ID = "rayweave.run_id"
TAG_NODE_ID = "rayweave.node_id"
TAG_WORKFLOW = "rayweave.workflow"
TAG_WORKFLOW_VERSION = "rayweave.workflow_version"
TAG_NODE_TYPE = "rayweave.node_type"
TAG_ROLE = "rayweave.role"
TAG_ATTEMPT = "rayweave.attempt"
PARENT_TAG = "mlflow.parentRunId"
#: The prefix of the parent-run claims' keys in Ray's key-value store.
KV_PREFIX = "rayweave-ml/"


@dataclass(frozen=True)
class Tracking:
    """Where a node tracks: the MLflow tracking URI and the artifact root of the experiments it creates."""

    tracking_uri: str
    artifacts_uri: str

    @classmethod
    def from_context(cls, ctx: NodeContext, node: str) -> Tracking:
        """The tracking settings of the run `ctx` belongs to; raises `TrackingError` naming `node` without."""
        uri = ctx.config.get(TRACKING_URI_KEY, "")
        if not uri:
            raise TrackingError(
                f"{node} (node {ctx.node_id or '?'}): the run's context has no MLflow tracking URI "
                f"(config key {TRACKING_URI_KEY!r}); start the run with engine.run / DurableRunner and "
                "Settings (RAYWEAVE_MLFLOW_TRACKING_URI, default sqlite:///$RAYWEAVE_HOME/mlflow.db), or pass "
                "config={...} to nodes.testing.run_node"
            )
        artifacts = ctx.config.get(ARTIFACTS_URI_KEY, "") or _default_artifacts(uri)
        return cls(uri, artifacts)


def _default_artifacts(tracking_uri: str) -> str:
    path = sqlite_path(tracking_uri)
    if path is None:
        return ""  # a tracking server: its own default artifact root
    return (path.parent / "mlartifacts").resolve().as_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///...` tracking URI, or None for other URIs."""
    scheme, separator, rest = uri.partition(":///")
    if not scheme.startswith("sqlite") or not separator:
        return None
    return Path("/" + rest.lstrip("/")) if uri.startswith(f"{scheme}:////") else Path(rest)


def _has_tables(path: Path) -> bool:
    """Whether the SQLite file holds an MLflow schema already (its alembic version and experiments)."""
    import sqlite3

    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"alembic_version", "experiments"} <= names:
            return False
        return bool(db.execute("SELECT count(*) FROM experiments").fetchone()[0])


def _use_wal(path: Path) -> None:
    """Put the tracking database in write-ahead-log mode (a property of the file, kept by every later
    connection): parallel trainings' readers then never wait for a writer, and a commit appends to the log
    instead of rewriting pages, so concurrent nodes logging to one SQLite file stop queuing behind each other."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _init_database(uri: str) -> None:
    """Create (migrate) a SQLite tracking database once, under an exclusive lock file beside it.

    Under the lock, a database that has MLflow's tables (and its default experiment) already is left alone,
    so only the first process pays for MLflow's migrations and the others wait for it only that long."""
    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if path is None:
        if uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES:
            _init_shared_database(uri)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _has_tables(path):
                MlflowClient(uri, registry_uri=uri).search_experiments(
                    max_results=1
                )  # creates and migrates the tables
                _use_wal(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: Tracking URIs that are a database MLflow opens itself (and migrates on first use), not a tracking server.
DATABASE_SCHEMES = frozenset({"postgresql", "mysql", "mssql"})
#: How long a node waits for another one to finish creating the tracking database's tables.
INIT_WAIT_S = 300.0


def _init_shared_database(uri: str) -> None:
    """Create (migrate) a tracking database that is not a SQLite file once in the cluster: the first node to
    claim it (put-if-absent in Ray's key-value store, as for the parent run) runs MLflow's migrations, the
    others wait for its word. MLflow's migrations racing from parallel nodes on a fresh database fail. A holder
    that fails gives the claim back, so a later node tries again."""
    import time
    import uuid

    from mlflow.tracking import MlflowClient

    key = "db-init:" + hashlib.sha256(uri.encode()).hexdigest()[:16]
    me = uuid.uuid4().hex
    holder = _claim(key, me)
    if holder == me:
        try:
            MlflowClient(uri, registry_uri=uri).search_experiments(
                max_results=1
            )  # creates and migrates the tables
        except Exception as exc:
            _claim(f"{key}:{me}", f"failed: {type(exc).__name__}")
            _release(key)
            raise
        _claim(f"{key}:{me}", "ok")
        return
    deadline = time.monotonic() + INIT_WAIT_S
    while (state := _claimed(f"{key}:{holder}")) is None:
        if time.monotonic() > deadline:
            raise TrackingError(
                f"another node has been creating the MLflow tables for {INIT_WAIT_S:.0f} s; check the tracking "
                "database"
            )
        time.sleep(0.1)
    if state != "ok":
        raise TrackingError(f"creating the MLflow tables failed in another node ({state}); run again")


@functools.cache
def client_for(tracking_uri: str) -> MlflowClient:
    """An `MlflowClient` of `tracking_uri`, its database initialised first (once per process and URI)."""
    from mlflow.tracking import MlflowClient

    try:
        _init_database(tracking_uri)
        return MlflowClient(tracking_uri, registry_uri=tracking_uri)
    except Exception as exc:
        raise TrackingError(f"MLflow tracking at {tracking_uri!r} is not usable: {exc}") from exc


def experiment_name(workflow: str) -> str:
    """The MLflow experiment of a workflow's runs: `rayweave/<workflow>`."""
    return f"rayweave/{workflow or 'default'}"


def experiment_id(client: MlflowClient, tracking: Tracking, workflow: str) -> str:
    """The id of the workflow's experiment, created (with its artifact location) if needed, race-free."""
    from mlflow.exceptions import MlflowException

    name = experiment_name(workflow)
    found = client.get_experiment_by_name(name)
    if found is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", workflow or "default")
        location = f"{tracking.artifacts_uri.rstrip('/')}/{slug}" if tracking.artifacts_uri else None
        if (
            location
            and location.startswith("file:")
            and tracking.tracking_uri.startswith(("http:", "https:"))
        ):
            location = (
                None  # a tracking server with a local default root: the server's own root serves better
            )
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by another node: names are unique in the store
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return str(found.experiment_id)


def lineage_tags(ctx: NodeContext) -> dict[str, str]:
    """The tags linking an MLflow run back to the rayweave run (see the module docstring)."""
    return {
        TAG_RUN_ID: ctx.run_id,
        TAG_WORKFLOW: ctx.workflow,
        TAG_WORKFLOW_VERSION: ctx.workflow_version,
    }


class _LocalClaims:
    """Put-if-absent outside Ray (a node called in-process): a dictionary under a lock of the process."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _claims: ClassVar[dict[str, str]] = {}

    @classmethod
    def claim(cls, key: str, value: str) -> str:
        with cls._lock:
            return cls._claims.setdefault(key, value)

    @classmethod
    def get(cls, key: str) -> str | None:
        with cls._lock:
            return cls._claims.get(key)

    @classmethod
    def release(cls, key: str) -> None:
        with cls._lock:
            cls._claims.pop(key, None)


def _ray_kv() -> Any:
    """Ray's internal key-value module when this process is connected to Ray, else None."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    from ray.experimental import internal_kv

    return internal_kv if internal_kv._internal_kv_initialized() else None  # type: ignore[no-untyped-call]


def _claim(key: str, value: str) -> str:
    """Offer `value` for `key` (put-if-absent, cluster-wide on Ray); returns the value that holds."""
    kv = _ray_kv()
    if kv is None:
        return _LocalClaims.claim(key, value)
    existed = kv._internal_kv_put(KV_PREFIX + key, value, overwrite=False)
    if not existed:
        return value
    held = kv._internal_kv_get(KV_PREFIX + key)
    return held.decode() if isinstance(held, bytes) else str(held)


def _release(key: str) -> None:
    """Give a claim back (the next `_claim` of `key` wins again)."""
    kv = _ray_kv()
    if kv is None:
        _LocalClaims.release(key)
        return
    kv._internal_kv_del(KV_PREFIX + key)


def _claimed(key: str) -> str | None:
    kv = _ray_kv()
    if kv is None:
        return _LocalClaims.get(key)
    held = kv._internal_kv_get(KV_PREFIX + key)
    return held.decode() if isinstance(held, bytes) else None


def _parent_key(tracking: Tracking, ctx: NodeContext) -> str:
    digest = hashlib.sha256(tracking.tracking_uri.encode()).hexdigest()[:16]
    return f"parent/{digest}/{ctx.run_id}"


def parent_run(client: MlflowClient, tracking: Tracking, experiment: str, ctx: NodeContext) -> str:
    """The id of the parent MLflow run of `ctx`'s rayweave run, created exactly once (module docstring).

    The process whose candidate wins asks the `ParentCloser` to end the parent when the rayweave run ends."""
    key = _parent_key(tracking, ctx)
    held = _claimed(key)
    if held is not None:
        return held
    tags = {**lineage_tags(ctx), TAG_ROLE: "workflow"}
    candidate = client.create_run(
        experiment, run_name=f"{ctx.workflow or 'workflow'} {ctx.run_id}", tags=tags
    )
    winner = _claim(key, candidate.info.run_id)
    if winner != candidate.info.run_id:
        client.delete_run(candidate.info.run_id)
    elif _close_with_run(tracking, winner, ctx):
        _claim(key + "/closer", "1")
    return winner


#: The detached actor that ends parent runs when their rayweave runs end (`ParentCloser`).
CLOSER_NAME = "rayweave-ml-parent-closer"
#: A parent run's MLflow status by the event that ended its rayweave run.
END_STATUS = {
    EventType.RUN_SUCCEEDED.value: "FINISHED",
    EventType.RUN_FAILED.value: "FAILED",
    EventType.RUN_CANCELLED.value: "KILLED",
}
#: How long one wait of the closer for a run's next events lasts (it waits again until the run ends).
CLOSER_POLL_S = 60.0


class ParentCloser:
    """The body of a detached actor (`CLOSER_NAME`, no CPU) that follows rayweave runs on the engine's run
    coordinator and ends each one's parent MLflow run when the run ends, with the run's outcome: FINISHED
    (succeeded), FAILED or KILLED (cancelled). A run the coordinator does not host (a node called outside an
    engine run on Ray, e.g. by `nodes.testing.run_node`) is not followed: its parent's end follows its last
    node run instead (`node_run`)."""

    def __init__(self) -> None:
        self.following: dict[str, Any] = {}

    async def watch(self, tracking_uri: str, parent: str, run_id: str, coordinator_name: str) -> bool:
        """End `parent` when rayweave run `run_id` ends; False when the coordinator (the actor named
        `coordinator_name`, from the run's node config) does not host that run."""
        import asyncio

        from cluster.actors import find_actor

        if parent in self.following:
            return True
        coordinator = find_actor(coordinator_name) if coordinator_name else None
        if coordinator is None:
            return False
        try:
            first = await coordinator.poll.remote(run_id, 0, 0.0)
        except Exception:  # not a run of the coordinator
            return False
        task = asyncio.get_running_loop().create_task(
            self._follow(coordinator, tracking_uri, parent, run_id, first)
        )
        self.following[parent] = task
        task.add_done_callback(lambda _: self.following.pop(parent, None))
        return True

    async def _follow(
        self, coordinator: Any, tracking_uri: str, parent: str, run_id: str, first: tuple[list[Any], bool]
    ) -> None:
        import asyncio

        events, done = first
        after, status = 0, ""
        try:
            while True:
                for event in events:
                    after = max(after, int(event.seq))
                    status = END_STATUS.get(str(getattr(event.type, "value", event.type)), status)
                if status or (done and not events):
                    break
                events, done = await coordinator.poll.remote(run_id, after, CLOSER_POLL_S)
        except Exception:  # the coordinator lost the run (it restarted): the run did not finish
            status = status or "KILLED"
        with contextlib.suppress(Exception):  # the tracking store is gone: nothing to end
            await asyncio.to_thread(_end_run, tracking_uri, parent, status or "FINISHED")


def _coordinator_name(ctx: NodeContext) -> str:
    """The run coordinator's actor name from the run's node config (`engine.execution.nodeconfig`)."""
    return str((ctx.config or {}).get("ray.run_coordinator", ""))


def _end_run(tracking_uri: str, run_id: str, status: str) -> None:
    client_for(tracking_uri).set_terminated(run_id, status)


def _close_with_run(tracking: Tracking, parent: str, ctx: NodeContext) -> bool:
    """Ask the `ParentCloser` (started here in this plugin's runtime environment when there is none) to end
    `parent` with `ctx`'s rayweave run; False outside Ray or when the run is not an engine run on Ray.

    Only a Ray worker asks: its runtime environment (this plugin's) is the closer's, so the closer can import
    this module; a driver calling a node in-process has no such environment."""
    if _ray_kv() is None:
        return False
    import ray

    if ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return False

    from cluster.actors import named_actor

    try:
        env = ray.get_runtime_context().runtime_env
        closer = named_actor(ParentCloser, CLOSER_NAME, num_cpus=0, runtime_env=dict(env), max_restarts=-1)
        return bool(
            ray.get(
                closer.watch.remote(tracking.tracking_uri, parent, ctx.run_id, _coordinator_name(ctx)),
                timeout=120,
            )
        )
    except Exception as exc:  # the parent's end then follows its last node run
        ctx.logger.warning("the parent MLflow run %s will not be ended with the run: %s", parent, exc)
        return False


@dataclass(frozen=True)
class NodeRun:
    """The MLflow run of one node run: its id, its parent's, and the experiment."""

    run_id: str
    parent_run_id: str
    experiment_id: str


@contextlib.contextmanager
def node_run(
    ctx: NodeContext, node_type: str, *, params: Mapping[str, Any] | None = None
) -> Iterator[NodeRun]:
    """An MLflow run of the node running in `ctx`, nested under its rayweave run's parent and active (for
    `mlflow.log_*`) inside the block; see the module docstring. The run id is reported as a `node.log` event."""
    import mlflow

    tracking = Tracking.from_context(ctx, node_type)
    client = client_for(tracking.tracking_uri)
    experiment = experiment_id(client, tracking, ctx.workflow)
    parent = parent_run(client, tracking, experiment, ctx)
    tags = {
        **lineage_tags(ctx),
        PARENT_TAG: parent,
        TAG_NODE_ID: ctx.node_id,
        TAG_NODE_TYPE: node_type,
        TAG_ROLE: "node",
        TAG_ATTEMPT: str(ctx.attempt),
    }
    created = client.create_run(experiment, run_name=ctx.node_id or node_type, tags=tags)
    run = NodeRun(created.info.run_id, parent, experiment)
    ctx.logger.info(
        "MLflow run %s (parent run %s, experiment %s)", run.run_id, run.parent_run_id, run.experiment_id
    )
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)  # process-wide: never another installation's
    try:
        with mlflow.start_run(run_id=run.run_id):
            if params:
                mlflow.log_params({k: _param_text(v) for k, v in params.items()})
            yield run
    finally:
        if _claimed(_parent_key(tracking, ctx) + "/closer") is None:  # no ParentCloser ends it with the run
            with contextlib.suppress(Exception):  # the parent's end follows its last node run
                client.set_terminated(parent, "FINISHED")


def _param_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
