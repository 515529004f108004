"""`DurableRunner`: runs whose every state lives in the store, and that a recovery sweep can resume.

`DurableRunner(settings).submit(workflow, inputs)` records the run in the store first (status `queued`, the
canonical document, the inputs), saves what a resume needs (the node definitions the plan uses) in the result
store, and starts the run with a `StoreEventSink` and a plan whose nodes write their results durably
(`persist_plan`). From `run.queued` on, events, node attempts and the heartbeat go to the store from the run's
coordinator.

`resume(run_id)` rebuilds the plan from the stored document, seeds it with the results of the nodes that already
succeeded (read back from the result store: they are not executed again), and starts it again; its events
continue the stored sequence. Callers normally do not call it directly: `engine.durable.recovery.recover`
claims orphaned runs atomically first.

Seeded values travel inline to the coordinator (never `ray.put` by this process), so the resumed run does not
depend on the process that resumed it staying alive.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.compile.plan import Plan, PlannedNode
from engine.durable.errors import NotResumableError, ResultNotFoundError
from engine.durable.recorder import DurableRecorder, member_port_of
from engine.durable.rerun import recorded_seeds, targeted_document, write_launch_record
from engine.durable.results import ResultStore, result_store_for
from engine.durable.stored import StoredRun
from engine.execution.access import policy_for
from engine.execution.events import Event
from engine.execution.handle import RunHandle
from engine.execution.runstate import members_of
from engine.execution.start import start_run
from engine.secrets.runs import run_secrets_for
from nodes.ids import NodeId, NodeTypeId, RunId, WorkflowId, new_run_id
from nodes.states import EventType, NodeStatus, RunStatus

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.cache.result_cache import ResultCache as ResultCache_
    from engine.execution.executor import Executor
    from engine.store import Store
    from nodes import Catalog

#: Name of the run-level blob holding what a resume needs besides the document and inputs.
RESUME_BLOB = "resume.pkl"
#: Node-run statuses whose stored results a resume may use.
_DONE = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CACHED, NodeStatus.RUNNING})


def workflow_document(workflow: Any) -> dict[str, Any]:
    """The canonical JSON form of a builder `Workflow`, a `WorkflowDoc`, a dict, or a .json/.yaml path."""
    if isinstance(workflow, str | Path):
        from engine.workflow import load_workflow_file

        workflow = load_workflow_file(workflow)
    if isinstance(workflow, Mapping):
        return dict(workflow)
    to_data = getattr(workflow, "to_data", None)
    if callable(to_data):
        return dict(to_data())
    raise TypeError(
        f"a durable run needs a workflow document (a Workflow, WorkflowDoc, dict or file path), not "
        f"{type(workflow).__name__}; a compiled Plan cannot be resumed after a crash"
    )


def plan_definitions(plan: Plan) -> dict[str, Any]:
    """Every node definition a plan uses (fused members and map sub-plans included), by node type id."""
    found: dict[str, Any] = {}

    def walk(p: Plan) -> None:
        for planned in p.nodes:
            for member in members_of(planned):
                if member.definition is not None:
                    found[member.type_id] = getattr(member.definition, "inner", member.definition)
            if planned.subplan is not None:
                walk(planned.subplan)

    walk(plan)
    return found


def plugin_versions(plan: Plan) -> dict[str, str]:
    """The exact plugin version that serves each node type of a plan (recorded with the run), by node type id:
    a plugin node's `plugin_ref` (`name@version`), `builtin@<rayweave version>` for the built-in library, and
    `<plugin>@<node version>` for nodes defined in code (`@node`), which belong to no installed plugin."""
    import importlib.metadata

    try:
        rayweave = importlib.metadata.version("rayweave")
    except importlib.metadata.PackageNotFoundError:  # a source checkout that was never installed
        rayweave = "unknown"
    versions: dict[str, str] = {}
    for type_id, definition in plan_definitions(plan).items():
        ref = getattr(definition, "plugin_ref", None)
        if isinstance(ref, str) and ref:
            versions[type_id] = ref
        elif definition.spec.plugin == "builtin":
            versions[type_id] = f"builtin@{rayweave}"
        else:
            versions[type_id] = f"{definition.spec.plugin}@{definition.spec.version}"
    return versions


class Launched(NamedTuple):
    """What `DurableRunner.launch` returns: the handle, the stored run row, and whether this call created it."""

    handle: RunHandle
    run: Any
    created: bool


class DurableRunner:
    """Submits and resumes durable runs (see the module docstring).

    `settings`: the installation (database URL, home). `store`: an open `Store` to use (default: opened from
    `settings.resolved_database_url`). `results`: the result store (a `ResultStore`, a directory or a pyarrow
    filesystem URI such as `s3://bucket/rayweave`; default `{home}/results`). `executor`: `"ray"` (the default;
    the cluster's run coordinator owns the run) or `"local"` (in this process, for tests and debugging).
    `catalog`: node types for compiling (the built-in catalog plus the definitions stored with each run when
    None). `heartbeat_s`: how often the coordinator heartbeats each run. `cache`: a `ResultCache` that runs
    read and fill, True for one over `settings`' cache directory, or False (the default) for none; see
    `engine.execution.start` for which of its levels a durable run may use, and `launch(cache=False)` to leave it alone
    for one run. `cache_per_owner`: runs of different owners never share cached results (their cache keys
    are made in the owner's scope), so a user cannot learn from a `cached` node what another user ran.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        results: ResultStore | str | Path | None = None,
        executor: str = "ray",
        catalog: Catalog | None = None,
        heartbeat_s: float = 2.0,
        cache: ResultCache_ | bool = False,
        cache_per_owner: bool = False,
    ) -> None:
        from engine.execution.api import sdk_settings

        self.settings = settings = sdk_settings(settings)
        if store is None:
            from engine.store import open_store

            store = open_store(settings.resolved_database_url)
        self.store = store
        if not isinstance(results, ResultStore):
            results = result_store_for(settings, results)
            results.check()
        self.results = results
        if executor not in ("ray", "local"):
            raise ValueError(f"unknown executor {executor!r} for durable runs; use 'ray' or 'local'")
        self.executor = executor
        self._executor: Executor | None = None
        self.catalog = catalog
        self.heartbeat_s = heartbeat_s
        if cache is True:
            from engine.cache.result_cache import ResultCache

            cache = ResultCache.for_settings(settings)
        self.cache: ResultCache_ | None = cache or None
        #: Whether each owner's runs have cache keys of their own (what a server with several users needs).
        self.cache_per_owner = cache_per_owner

    @property
    def database_url(self) -> str:
        """The URL of the store, with its password (the coordinator connects with it)."""
        return str(self.store.connect_url)

    # -- new runs -------------------------------------------------------------------------------------

    def launch(
        self,
        workflow: Any,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: RunId | None = None,
        idempotency_key: str | None = None,
        owner: str = "local",
        workflow_id: WorkflowId | None = None,
        workflow_version: int | None = None,
        outputs: Sequence[str] | None = None,
        optimize: bool = True,
        fail_fast: bool = False,
        on_event: Callable[[Event], None] | None = None,
        cache: bool = True,
        plan: Plan | None = None,
        max_active: int | None = None,
        targets: Sequence[str] | None = None,
        inputs_from: RunId | None = None,
    ) -> Launched:
        """Record a new run in the store and start it; returns its handle and whether this call created it.

        `workflow` is a builder `Workflow`, a `WorkflowDoc`, its dict form or a file path; with `workflow_id`
        (and optionally `workflow_version`) it is the stored workflow instead (pass None as `workflow`). A second
        launch with the same `idempotency_key` (and owner) returns a handle on the first run, with `created` False,
        instead of starting another. `cache=False` runs every node and leaves the runner's result cache alone
        (neither read nor written), also when the run is resumed. `plan`: the workflow compiled already by the
        caller (with this runner's catalog, `optimize` and `outputs`), so that a request compiles it once.
        `max_active`: the owner's quota of queued and running runs (`RunQuotaExceededError` at it; nothing is
        recorded or started). `targets` ("run to here"): run only those nodes and their ancestors, with the
        targets' output ports as the outputs; `inputs_from` ("re-run this node", with `targets`): take the
        outputs of the targets' upstream nodes from that earlier run (`engine.durable.rerun`); such a run
        compiles without optimization, so that no target is fused with the nodes it reads from.
        """
        from engine.compile import compile_workflow
        from engine.execution.api import resolve_inputs

        if workflow_id is not None:
            version = (
                self.store.workflows.get_version(workflow_id, workflow_version)
                if workflow_version is not None
                else self.store.workflows.latest(workflow_id)
            )
            document, workflow_version = dict(version.document), version.version
            source: Any = document
        else:
            document, source = workflow_document(workflow), workflow
        if inputs_from is not None:
            if not targets:
                raise ValueError(
                    "inputs_from needs targets: the nodes to run again with their recorded inputs"
                )
            optimize = False
        if plan is None:
            plan = compile_workflow(
                source,
                self.catalog,
                optimize=optimize,
                outputs=list(outputs) if outputs else None,
                targets=list(targets) if targets else None,
            )
        seeds = (
            recorded_seeds(self.store, self.results, inputs_from, plan, targets or ())
            if inputs_from is not None
            else {}
        )
        if workflow_version is not None:  # the nodes' context names the stored workflow's version
            plan = dataclasses.replace(plan, version=str(workflow_version))
        values = resolve_inputs(plan, inputs)
        run_id = run_id or new_run_id()
        keep_document = workflow_id is None
        if targets:  # the run keeps the document its outputs are read by (the targets' ports)
            document, keep_document = targeted_document(document, plan), True
        created = self.store.runs.create(
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            document=document if keep_document else None,
            inputs=dict(inputs or {}),
            owner=owner,
            idempotency_key=idempotency_key,
            run_id=run_id,
            plugin_versions=plugin_versions(plan),
            # Owned from creation on: the sweep gives a queued run a start-up grace counted from this beat.
            heartbeat=True,
            max_active=max_active,
        )
        if not created.created:
            return Launched(self.attach(created.run.id, on_event=on_event), created.run, False)
        scope = self._cache_scope(owner)
        resume_info = {
            "definitions": plan_definitions(plan),
            "outputs": list(outputs) if outputs else None,
            "optimize": optimize,
            "fail_fast": fail_fast,
            "cache": cache,
            # The scope its cache keys were made in: a resume by another runner (the CLI's, a sweep's) must
            # read and fill the same owner's entries, whatever that runner's own `cache_per_owner`.
            "cache_scope": scope,
            "targets": list(targets) if targets else None,
            "inputs_from": inputs_from,
        }
        self.results.put_blob(run_id, RESUME_BLOB, _dumps(resume_info))
        write_launch_record(self.results, run_id, targets, inputs_from)
        handle = self._start(
            plan,
            values,
            run_id,
            seeds,
            seq_offset=0,
            resumed=False,
            fail_fast=fail_fast,
            on_event=on_event,
            cache=self.cache if cache else None,
            cache_scope=scope,
            owner=owner,
        )
        return Launched(handle, created.run, True)

    def submit(self, workflow: Any, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> RunHandle:
        """Record a new run in the store and start it; returns its `RunHandle` at once (see `launch` for the
        arguments; an idempotent repeat returns a handle on the first run)."""
        return self.launch(workflow, inputs, **kwargs).handle

    def run(self, workflow: Any, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """`submit` and wait for the `RunResult`."""
        timeout = kwargs.pop("timeout", None)
        return self.submit(workflow, inputs, **kwargs).result(timeout)

    def attach(self, run_id: RunId, *, on_event: Callable[[Event], None] | None = None) -> RunHandle:
        """A handle on a run recorded in the store, whoever runs it (events and result come from the store)."""
        return RunHandle(StoredRun(self.store, self.results, run_id), on_event)

    # -- resuming -------------------------------------------------------------------------------------

    def resume(self, run_id: RunId, *, on_event: Callable[[Event], None] | None = None) -> RunHandle:
        """Start an unfinished run again, reusing the stored results of its succeeded nodes.

        The caller must own the run (`recover` claims it first); raises `NotResumableError` for a finished run
        or one whose document or node definitions cannot be found.
        """
        from engine.compile import compile_workflow
        from engine.execution.api import resolve_inputs

        run = self.store.runs.get(run_id)
        if run.status in RunStatus.terminal():
            raise NotResumableError(f"run {run_id!r} is already {run.status}; there is nothing to resume")
        if run.document is not None:
            document = dict(run.document)
        elif run.workflow_id is not None and run.workflow_version is not None:
            document = dict(self.store.workflows.get_version(run.workflow_id, run.workflow_version).document)
        else:
            raise NotResumableError(f"run {run_id!r} records no workflow document; it cannot be resumed")
        info = self._resume_info(run_id)
        catalog = self._catalog_with(info.get("definitions", {}))
        outputs = info.get("outputs")
        targets = info.get("targets")
        try:
            plan = compile_workflow(
                document,
                catalog,
                optimize=bool(info.get("optimize", True)),
                outputs=outputs,
                targets=targets,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise NotResumableError(
                f"run {run_id!r} cannot be resumed: its workflow does not compile here ({exc}); make its node "
                "types importable (install the plugin, or pass a catalog to DurableRunner)"
            ) from exc
        if run.workflow_version is not None:
            plan = dataclasses.replace(plan, version=str(run.workflow_version))
        values = resolve_inputs(plan, run.inputs)
        seeds = self._repair_and_seed(run_id, plan)
        if info.get("inputs_from") and targets:
            # A re-run's upstream values come from the run it re-runs (this run never stored them).
            recorded = recorded_seeds(self.store, self.results, info["inputs_from"], plan, targets)
            seeds = {**recorded, **seeds}
        offset = self.store.events.last_seq(run_id)
        scope: str | None = info.get("cache_scope")
        if scope is None and self.cache_per_owner:
            scope = self._cache_scope(run.owner)
        return self._start(
            plan,
            values,
            run_id,
            seeds,
            seq_offset=offset,
            resumed=True,
            fail_fast=bool(info.get("fail_fast", False)),
            on_event=on_event,
            # A run that does not record the scope of its cache keys (launched before it was recorded, or
            # created without this runner) is resumed without the cache unless this runner scopes by owner:
            # in another scope it could read or fill another owner's entries.
            cache=self.cache if info.get("cache", True) and scope is not None else None,
            cache_scope=scope or "",
            owner=run.owner,
        )

    def _resume_info(self, run_id: RunId) -> dict[str, Any]:
        try:
            info = pickle.loads(self.results.get_blob(run_id, RESUME_BLOB))
        except ResultNotFoundError:
            return {}  # e.g. a run created through the API without the runner: the catalog must know its types
        except Exception as exc:
            raise NotResumableError(
                f"run {run_id!r}: the node definitions stored with it cannot be loaded ({exc}); make the modules "
                "that define its nodes importable in this process"
            ) from exc
        return dict(info)

    def _catalog_with(self, definitions: Mapping[str, Any]) -> Any:
        from nodes import Catalog

        base = self.catalog if self.catalog is not None else Catalog.builtin()
        if not definitions:
            return base
        # A plain snapshot whatever the catalog's class (the server's live catalog cannot be rebuilt from its
        # definitions, and must not be changed).
        copy = base.copy()
        known = {spec.id for spec in copy.specs()}
        # A catalog the caller passed wins for the types it knows; the stored definitions fill in the rest.
        extra = [d for type_id, d in definitions.items() if self.catalog is None or type_id not in known]
        copy.extend(extra, replace=True)
        return copy

    def _repair_and_seed(self, run_id: RunId, plan: Plan) -> dict[str, dict[str, Any]]:
        """Close the attempts the crash interrupted, and collect the outputs of every finished node.

        An attempt still `running` whose result is in the result store did succeed (its task wrote the result,
        then the coordinator died before recording it): it is recorded as succeeded; so is a node with a stored
        result but no attempt recorded at all. An attempt without a result is recorded as failed (interrupted).
        Returns seed outputs per top-level plan node (port -> value).

        A top-level map node counts like any other: its list is written once every element has succeeded,
        before its own success is recorded. A map without a stored result (interrupted midway) runs again as a
        whole: the nodes of its elements keep no results.

        Each attempt recorded as succeeded here is announced by a `node.succeeded` event (payload `recovered`:
        true), which its coordinator died before sending: the event log says the node ran, once. The resumed run
        then takes its outputs from the result store (`node.cached`, level `resumed`), as for any finished node.
        """
        from nodes import SKIP

        node_runs = self.store.node_runs
        latest = node_runs.latest(run_id)
        stored: dict[str, bool] = {}
        recovered = self._close_interrupted(run_id, latest)
        seeds: dict[str, dict[str, Any]] = {}
        for planned in plan.nodes:
            values: dict[str, Any] = {}
            for port in planned.outputs:
                member, member_port = member_port_of(planned, port)
                row = latest.get(member)
                if row is None:
                    # Its task wrote the result, but the coordinator died before it recorded even the start.
                    if not self.results.exists(run_id, member):
                        break
                    row = latest[member] = node_runs.record(
                        run_id,
                        member,
                        attempt=1,
                        status=NodeStatus.SUCCEEDED,
                        node_type=_type_of(planned, member),
                        result_location=self.results.location(run_id, member),
                    )
                    recovered.append(_recovered(member, 1, str(_type_of(planned, member))))
                if row.status == NodeStatus.SKIPPED:
                    values[port] = SKIP
                    continue
                if row.status not in _DONE:
                    break
                if member not in stored:
                    stored[member] = self.results.exists(run_id, member)
                if not stored[member]:
                    break
                try:
                    values[port] = self.results.get(run_id, member, (member_port,))[member_port]
                except ResultNotFoundError:
                    break
            else:
                if planned.outputs:
                    seeds[planned.id] = values
        recovered = self._not_yet_announced(run_id, recovered)
        if recovered:
            self.store.events.append(run_id, recovered)
        return seeds

    def _not_yet_announced(self, run_id: RunId, recovered: list[Any]) -> list[Any]:
        """Of the `node.succeeded` events a resume would append, those of nodes whose success the run's log does
        not hold yet: a coordinator that appended a node's success and died before recording it in the node's
        attempt left the event (a node succeeds once in a run)."""
        if not recovered:
            return recovered
        announced: set[str] = set()
        after = 0
        while page := self.store.events.read(run_id, after=after, limit=1000):
            after = page[-1].seq
            announced.update(str(e.node) for e in page if e.type == EventType.NODE_SUCCEEDED)
        return [e for e in recovered if str(e.node_id) not in announced]

    def _close_interrupted(self, run_id: RunId, latest: Mapping[NodeId, Any]) -> list[Any]:
        """Record each attempt a crash left `running` (in `latest`, updated in place): succeeded if its result is
        stored, else failed (`RunInterrupted`). Returns the `node.succeeded` events of the succeeded ones."""
        node_runs = self.store.node_runs
        recovered = []
        for node, attempt in latest.items():
            if attempt.status != NodeStatus.RUNNING:
                continue
            if self.results.exists(run_id, node):
                location = self.results.location(run_id, node)
                node_runs.finish(
                    run_id, node, attempt.attempt, status=NodeStatus.SUCCEEDED, result_location=location
                )
                attempt.status = NodeStatus.SUCCEEDED
                recovered.append(_recovered(node, attempt.attempt, str(attempt.node_type or "")))
            else:
                error = {
                    "type": "RunInterrupted",
                    "message": "the run's coordinator was lost while this attempt ran; the run was resumed",
                }
                node_runs.finish(run_id, node, attempt.attempt, status=NodeStatus.FAILED, error=error)
                attempt.status = NodeStatus.FAILED
        return recovered

    # -- starting -------------------------------------------------------------------------------------

    def _cache_scope(self, owner: str) -> str:
        return f"owner:{owner}" if self.cache_per_owner else ""

    def _start(
        self,
        plan: Plan,
        values: Mapping[str, Any],
        run_id: RunId,
        seeds: Mapping[str, Mapping[str, Any]],
        *,
        seq_offset: int,
        resumed: bool,
        fail_fast: bool,
        on_event: Callable[[Event], None] | None,
        cache: ResultCache_ | None,
        cache_scope: str,
        owner: str,
    ) -> RunHandle:
        """Start one execution of a stored run on the one run path, with a `DurableRecorder`; the owner's
        secrets that the plan refers to go with it, sealed (`engine.secrets.refs`)."""
        recorder = DurableRecorder(
            self.store,
            self.results,
            seq_offset=seq_offset,
            resumed=resumed,
            heartbeat_s=self.heartbeat_s,
            lineage_url=self.settings.openlineage_url,
            lineage_namespace=self.settings.openlineage_namespace,
            bus_url=self.settings.event_bus,
        )
        return start_run(
            plan,
            values,
            executor=self._executor_for_runs(),
            cache=cache,
            recorder=recorder,
            run_id=run_id,
            fail_fast=fail_fast,
            seeds=seeds,
            cache_scope=cache_scope,
            policy=policy_for(self.settings),
            on_event=on_event,
            secrets=run_secrets_for(self.store, self.settings, plan, owner, run_id),
        )

    def _executor_for_runs(self) -> Executor:
        """The runner's executor, made on first use (a Ray one connects to Ray on its first run)."""
        if self._executor is None:
            from engine.execution.api import make_executor

            self._executor = make_executor(self.executor, self.settings)
        return self._executor


def _dumps(value: Any) -> bytes:
    # cloudpickle (shipped with Ray) so definitions written in __main__ or a notebook travel by value.
    from ray import cloudpickle

    dumps: Any = cloudpickle.dumps
    return bytes(dumps(value))


def _recovered(node: str, attempt: int, node_type: str) -> Any:
    """The `node.succeeded` event a resume appends for a node whose coordinator died before announcing it."""
    from engine.store import NewEvent

    payload = {"type": node_type, "attempt": attempt, "recovered": True}
    return NewEvent(str(EventType.NODE_SUCCEEDED), NodeId(node), payload)


def _type_of(planned: PlannedNode, member: NodeId) -> NodeTypeId:
    """The node type of document node `member` of a planned node (itself, or a member of a fused group)."""
    for node in members_of(planned):
        if node.id == member:
            return node.type_id
    return planned.type_id
