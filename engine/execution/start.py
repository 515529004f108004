"""`start_run`: the one way a run starts, from a compiled plan and its resolved inputs to a `RunHandle`.

Every entry point ends here: `engine.run` / `engine.submit` (the SDK, `rayweave run` without a shared store),
`DurableRunner.launch` (`rayweave run`, `POST /v1/runs`) and `DurableRunner.resume` (the recovery sweep). They
differ only in what they plug in:

- an `Executor` (Ray's run coordinator, or in-process);
- a `ResultCache` (or none), read before the run and filled after it;
- a `Recorder`: what keeps the run. `EventRecorder` hands events to an optional sink and keeps nothing else;
  `engine.durable.DurableRecorder` makes the run durable (results written to the result store, events, node
  attempts and heartbeats to the store, a handle that falls back to the store when the coordinator is gone).

The steps, the same for every run:

1. with a cache, every node gets its cache key (in the run's cache scope);
2. walk back from the workflow outputs: a seeded node (a resumed run's finished node) or a cache hit stops
   the walk, so what is known is not recomputed and its upstream is not needed;
3. the recorder prepares the nodes still needed (a durable run's nodes write their results durably);
4. a run answered entirely from seeds and cache is a `CachedRun`; otherwise the executor starts it (Ray is
   ensured by the executor, once, and only then);
5. the cache records the results when the run ends, and the recorder wraps what the handle reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from engine.compile.plan import NodeRef, Plan, PlannedNode
from engine.execution.events import Event, EventSink
from engine.execution.handle import RunHandle, RunSource
from nodes.ids import RunId, new_run_id

if TYPE_CHECKING:
    from engine.cache.result_cache import CacheHit, ResultCache
    from engine.execution.executor import Executor
    from engine.execution.mapping import MapResultRecorder
    from engine.secrets.refs import RunSecrets
    from nodes.access import AccessPolicy

#: The cache level reported for a node whose result a resumed run took from its earlier execution.
RESUMED_LEVEL = "resumed"


class Recorder(Protocol):
    """What keeps a run: where its events go, how its nodes keep their results, what its handle reads.

    `detached` is true when the run must not depend on the process that starts it (a durable run outlives it):
    its inputs and known results then travel to the executor inline, never as objects this process owns, and
    only the cache levels that hold values (memory, disk) are read.
    """

    detached: bool

    def prepare(self, plan: Plan) -> Plan:
        """The plan to execute (the nodes still needed), e.g. with nodes that write their results durably."""

    def record_known(self, run_id: RunId, plan: Plan, hits: Mapping[str, CacheHit]) -> None:
        """Keep the results the run takes from the cache (they are not computed, so nobody else writes them)."""

    def sink(self, run_id: RunId, plan: Plan) -> EventSink | None:
        """Where the executor writes the run's events (None: nowhere but the handle)."""

    def map_results(self, plan: Plan) -> MapResultRecorder | None:
        """Where the executor keeps the results of top-level map nodes (None: nowhere)."""

    def source(self, run_id: RunId, source: RunSource) -> RunSource:
        """What the run's handle reads (the executor's run, or something wrapping it)."""


class EventRecorder:
    """The recorder of a run that is not durable: its events go to `sink` (if any) and its handle."""

    detached = False

    def __init__(self, sink: EventSink | None = None) -> None:
        self._sink = sink

    def prepare(self, plan: Plan) -> Plan:
        """The plan as it is."""
        return plan

    def record_known(self, run_id: RunId, plan: Plan, hits: Mapping[str, CacheHit]) -> None:
        """Nothing to keep: the cache has them."""

    def sink(self, run_id: RunId, plan: Plan) -> EventSink | None:
        """The sink given, if any."""
        return self._sink

    def map_results(self, plan: Plan) -> MapResultRecorder | None:
        """None: a run that is not durable keeps no map results."""
        return None

    def source(self, run_id: RunId, source: RunSource) -> RunSource:
        """The executor's run."""
        return source


def start_run(
    plan: Plan,
    inputs: Mapping[str, Any],
    *,
    executor: Executor,
    cache: ResultCache | None = None,
    recorder: Recorder | None = None,
    run_id: RunId | None = None,
    fail_fast: bool = False,
    seeds: Mapping[str, Mapping[str, Any]] | None = None,
    cache_scope: str = "",
    policy: AccessPolicy | None = None,
    on_event: Callable[[Event], None] | None = None,
    secrets: RunSecrets | None = None,
) -> RunHandle:
    """Start a run of the compiled `plan` with resolved `inputs` (see the module docstring for the steps).

    `seeds`: outputs known already, per top-level node id (port -> value): a resumed run's finished nodes,
    which are not executed again. `cache_scope`: the scope of the run's cache keys (e.g. one per owner, so
    users never share cached results). `policy`: what the run's file and network nodes may reach. `secrets`:
    the sealed secrets its nodes refer to (`engine.secrets.refs`), opened in the workers that need them.
    """
    from engine.cache.result_cache import CacheHit
    from engine.execution.cached import CachedRun, caching_source, prune_to_outputs

    recorder = recorder if recorder is not None else EventRecorder()
    run_id = run_id or new_run_id()
    seeds = seeds or {}
    if cache is not None:
        from engine.compile.cache_keys import keyed_plan

        plan = keyed_plan(plan, inputs, scope=cache_scope)
    hits: dict[str, CacheHit] = {node: CacheHit(RESUMED_LEVEL, values=dict(v)) for node, v in seeds.items()}
    cached = _cache_finder(plan, cache, values_only=recorder.detached)

    def known(planned: PlannedNode) -> bool:
        if planned.id in hits:
            return True
        hit = cached(planned)
        if hit is not None:
            hits[planned.id] = hit
        return hit is not None

    todo, stopped = prune_to_outputs(plan, known)
    hits = {node: hit for node, hit in hits.items() if node in stopped}
    todo = recorder.prepare(todo)
    recorder.record_known(run_id, todo, {n: h for n, h in hits.items() if n not in seeds})
    sink = recorder.sink(run_id, todo)
    source: RunSource
    if all(p.id in hits for p in todo.nodes):
        source = CachedRun(run_id, todo, hits, inputs, sink)
    else:
        output_nodes = frozenset(b.node for b in todo.outputs.values() if isinstance(b, NodeRef))
        source = executor.start(
            todo,
            inputs,
            run_id=run_id,
            fail_fast=fail_fast,
            cached=hits,
            cache_dir=cache.disk_dir if cache is not None else None,
            sink=sink,
            persist_nodes=output_nodes,
            policy=policy,
            cache_scope=cache_scope,
            secrets=secrets,
            map_results=recorder.map_results(todo),
            detached=recorder.detached,
        )
        if cache is not None:
            # A detached run's object refs would only keep objects of a run that may outlive this process.
            source = caching_source(source, todo, cache, output_nodes, object_level=not recorder.detached)
    return RunHandle(recorder.source(run_id, source), on_event)


def _cache_finder(
    plan: Plan, cache: ResultCache | None, *, values_only: bool
) -> Callable[[PlannedNode], CacheHit | None]:
    """A lookup of a node's cached outputs (the ports the plan reads of it), or a finder of nothing.

    `values_only`: skip the object-store level, whose refs belong to this process (a run that outlives it
    could not read them)."""
    if cache is None:
        return lambda planned: None
    from engine.execution.cached import needed_ports

    ports = needed_ports(plan)

    def find(planned: PlannedNode) -> CacheHit | None:
        wanted = tuple(sorted(ports[planned.id]))
        if not planned.cache_key or not planned.cache or not wanted:
            return None
        return cache.lookup(planned.cache_key, wanted, type_id=planned.type_id, refs=not values_only)

    return find
