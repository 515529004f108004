"""What the cache and earlier executions answer: pruning a plan to what is still needed, and recording results.

`prune_to_outputs` walks back from a plan's outputs and stops at nodes whose results are known (cache hits, a
resumed run's finished nodes); `CachedRun` is a run answered entirely that way; `caching_source` records a run's
node results in the result cache when it ends. `engine.execution.start.start_run` uses all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from engine.cache.result_cache import CacheHit, ResultCache
from engine.compile.plan import Const, InputRef, NodeRef, Plan, PlannedNode, node_refs
from engine.execution.events import Event, EventLog, EventSink
from engine.execution.result import RunResult
from engine.execution.runstate import RunState
from nodes.ids import RunId
from nodes.states import RunStatus


def needed_ports(plan: Plan) -> dict[str, set[str]]:
    """For each node, the ports read by the plan's outputs or by other nodes."""
    ports: dict[str, set[str]] = {p.id: set() for p in plan.nodes}
    for planned in plan.nodes:
        for binding in planned.inputs.values():
            for ref in node_refs(binding):
                if ref.node in ports:
                    ports[ref.node].add(ref.port)
    for binding in plan.outputs.values():
        if isinstance(binding, NodeRef) and binding.node in ports:
            ports[binding.node].add(binding.port)
    return ports


def prune_to_outputs(plan: Plan, stop: Callable[[PlannedNode], bool]) -> tuple[Plan, frozenset[str]]:
    """Keep only the nodes the plan's outputs need; returns the pruned plan and the ids it stopped at.

    Walks back from the outputs; a node for which `stop` is true (its result is already known: a cache hit, a
    node a resumed run seeds) is kept but its upstream is not followed. Such a node does not run, so it reads
    nothing: its bindings are dropped, which keeps the plan closed (every `NodeRef` names a node of the plan)
    although the nodes it read from may be gone — executors that count readers or wait for upstream nodes
    would otherwise look up nodes that are not there. `stop` is called at most once per node reached.
    """
    by_id = {p.id: p for p in plan.nodes}
    keep: set[str] = set()
    stopped: set[str] = set()
    stack = [b.node for b in plan.outputs.values() if isinstance(b, NodeRef)]
    while stack:
        node_id = stack.pop()
        if node_id in keep or node_id not in by_id:
            continue
        keep.add(node_id)
        if stop(by_id[node_id]):
            stopped.add(node_id)
        else:
            stack.extend(by_id[node_id].upstream())
    if not stopped and len(keep) == len(plan.nodes):
        # Nothing known and nothing unneeded: the plan itself, so that what is kept per plan object (its
        # shipped copy in the object store, its keyed copy) serves every run of it.
        return plan, frozenset()
    nodes = tuple(replace(p, inputs={}) if p.id in stopped else p for p in plan.nodes if p.id in keep)
    return replace(plan, nodes=nodes), frozenset(stopped)


class CacheLookup(Protocol):
    """What `plan_with_cache` asks of a cache (a `ResultCache`, or a view of some of its levels)."""

    def lookup(self, key: str, ports: tuple[str, ...], *, type_id: str = "") -> CacheHit | None:
        """The outputs `ports` of the node keyed `key`, or None."""


def plan_with_cache(plan: Plan, cache: CacheLookup | None) -> tuple[Plan, dict[str, CacheHit]]:
    """Walk back from the outputs; returns the nodes still to run (as a plan) and the cache hits they use.

    A hit keeps its node in the plan (its outputs are read from the cache) without its upstream links.
    """
    if cache is None:
        return plan, {}
    ports = needed_ports(plan)
    hits: dict[str, CacheHit] = {}

    def found(planned: PlannedNode) -> bool:
        hit = _lookup(cache, planned, tuple(sorted(ports[planned.id])))
        if hit is not None:
            hits[planned.id] = hit
        return hit is not None

    todo, _ = prune_to_outputs(plan, found)
    return todo, hits


def _lookup(cache: CacheLookup, planned: PlannedNode, ports: tuple[str, ...]) -> CacheHit | None:
    if not planned.cache_key or not planned.cache or not ports:
        return None
    return cache.lookup(planned.cache_key, ports, type_id=planned.type_id)


class CachedRun:
    """A run answered entirely from the cache: its events and result exist before anyone asks."""

    def __init__(
        self,
        run_id: RunId,
        plan: Plan,
        hits: Mapping[str, CacheHit],
        inputs: Mapping[str, Any],
        sink: EventSink | None,
    ) -> None:
        self.run_id = run_id
        log = EventLog(run_id, sink)
        state = RunState(run_id, plan, log)
        state.queued()
        state.started()
        for planned in plan.nodes:
            if planned.id in hits:
                state.cached(planned, hits[planned.id].level)
        status = state.finish()
        outputs = {}
        for name, binding in plan.outputs.items():
            if isinstance(binding, NodeRef):
                hit = hits[binding.node]
                outputs[name] = (
                    hit.values[binding.port] if binding.port in hit.values else _get(hit.refs[binding.port])
                )
            elif isinstance(binding, InputRef):
                outputs[name] = inputs[binding.name]
            elif isinstance(binding, Const):
                outputs[name] = binding.value
        self.log = log
        self._result = RunResult(
            run_id, plan.name, status, outputs, state.results(), state.started_at, state.finished_at
        )

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Every event is already there."""
        del timeout
        return self.log.after(after), True

    def result(self, timeout: float | None = None) -> RunResult:
        """The result (already known)."""
        del timeout
        return self._result

    def cancel(self) -> None:
        """Nothing to cancel: the run is over."""


def _get(ref: Any) -> Any:
    import ray

    return ray.get(ref)


class _CachingSource:
    """Wraps an executor's run: when it ends, its results are recorded in the result cache."""

    def __init__(
        self,
        inner: Any,
        plan: Plan,
        cache: ResultCache,
        output_nodes: frozenset[str],
        object_level: bool = True,
    ) -> None:
        self.inner = inner
        self.run_id = inner.run_id
        self.plan = plan
        self.cache = cache
        self.output_nodes = output_nodes
        self.object_level = object_level
        self._recorded = False

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Delegate to the run."""
        events, finished = self.inner.poll(after, timeout)
        return list(events), bool(finished)

    def cancel(self) -> None:
        """Delegate to the run."""
        self.inner.cancel()

    def result(self, timeout: float | None = None) -> RunResult:
        """The run's result; the first call also records node results in the cache."""
        result: RunResult = self.inner.result(timeout)
        if not self._recorded:
            self._recorded = True
            try:
                self._record(result)
            except Exception as exc:  # a cache problem must not fail a finished run
                logging.getLogger("rayweave.engine").warning(
                    "could not record run %s in the cache: %s", self.run_id, exc
                )
        return result

    def _record(self, result: RunResult) -> None:
        by_id: dict[str, PlannedNode] = {p.id: p for p in self.plan.nodes}
        values = getattr(self.inner, "values", None)
        if isinstance(values, dict):  # in-process: every value is here already
            per_node: dict[str, dict[str, Any]] = {}
            for (node_id, port), value in values.items():
                per_node.setdefault(node_id, {})[port] = value
            for node_id, outputs in per_node.items():
                planned = by_id.get(node_id)
                if planned is not None and planned.cache_key and planned.cache and _ok(result, planned):
                    self.cache.put_values(
                        planned.cache_key,
                        planned.type_id,
                        outputs,
                        durable=False,
                        member_types=member_types(planned),
                    )
        for node_id, refs in getattr(self.inner, "node_refs", {}).items() if self.object_level else ():
            planned = by_id.get(node_id)
            if planned is not None and planned.cache_key and planned.cache and _ok(result, planned):
                self.cache.put_refs(
                    planned.cache_key, planned.type_id, refs, member_types=member_types(planned)
                )
        # The fetched workflow outputs go to the memory level so the same request is answered at once.
        if result.status is RunStatus.SUCCEEDED:
            for name, binding in self.plan.outputs.items():
                if isinstance(binding, NodeRef) and name in result.outputs:
                    planned = by_id.get(binding.node)
                    if planned is not None and planned.cache_key and planned.cache and _ok(result, planned):
                        self.cache.memory.put(
                            planned.cache_key,
                            planned.type_id,
                            {binding.port: result.outputs[name]},
                            member_types=member_types(planned),
                        )
        self.cache.evict()


def member_types(planned: PlannedNode) -> tuple[str, ...]:
    """The node types of a fused group's members (what `rayweave cache purge --node-type` matches), or ()."""
    return tuple(m.type_id for m in planned.members)


def caching_source(
    inner: Any, plan: Plan, cache: ResultCache, output_nodes: frozenset[str], *, object_level: bool = True
) -> Any:
    """`inner` (a `RunSource`) recording the results of `plan`'s nodes in `cache` when the run ends.

    `object_level=False` records no object refs (for callers that never read that level: they would only keep
    the objects pinned in the object store)."""
    return _CachingSource(inner, plan, cache, output_nodes, object_level)


def _ok(result: RunResult, planned: PlannedNode) -> bool:
    from engine.execution.runstate import members_of
    from nodes.states import NodeStatus

    return all(
        result.nodes.get(m.id) is not None and result.nodes[m.id].status is NodeStatus.SUCCEEDED
        for m in members_of(planned)
    )
