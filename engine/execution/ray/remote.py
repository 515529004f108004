"""What runs on Ray workers for the coordinator: the node task, the map collector, class-node actors.

Also the small picklable values passed between the caller and the coordinator (`RunOptions`,
`RemoteRunResult`) and the names under which the coordinator is found.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cluster.actors import find_actor
from engine.compile.plan import PlannedNode
from engine.execution.breaker import BreakerClient
from engine.execution.events import EventSink
from engine.execution.mapping import MapResultRecorder, persist_map_result
from engine.execution.ray.wire import pack_meta, this_node, unpack
from engine.execution.result import NodeResult
from engine.execution.task import RawEvent, TaskEmitter, TaskSpec, UpstreamFailure, execute_task
from engine.secrets.refs import RunSecrets
from nodes.access import AccessPolicy
from nodes.ids import NodeId, RunId
from nodes.objectstore import Location
from nodes.states import RunStatus

COORDINATOR_NAME = "rayweave-coordinator"


def coordinator_name(index: int) -> str:
    """The actor name of run coordinator `index` (0 keeps the single coordinator's name; see
    `engine.execution.ray.coordinators`)."""
    return COORDINATOR_NAME if index == 0 else f"{COORDINATOR_NAME}-{index}"


#: The default window of a run: the most of its tasks submitted to Ray and not yet finished (`RunOptions`).
#: `cluster.settings.Settings.max_tasks_in_flight` has the same default (cluster does not import the engine).
DEFAULT_MAX_IN_FLIGHT = 4096


def _sender(spec: TaskSpec) -> Callable[[int, list[RawEvent]], None]:
    """The event channel of a task: fire-and-forget calls to the coordinator, looked up on first use.

    Tasks find the coordinator by name instead of receiving its handle, because most tiny tasks never send an
    event and a handle costs every task its deserialization. The handle found is kept by every task of this
    process, across runs, for as long as that coordinator lives (`_coordinator`).
    """
    return functools.partial(_send, spec)


def _send(spec: TaskSpec, index: int, events: list[RawEvent]) -> None:
    prefix = spec.extra.get("prefix", "")
    instance = spec.extra.get("coordinator_id") or spec.run_id
    _coordinator(spec.extra["coordinator"], instance).report.remote(
        spec.run_id, prefix, prefix + spec.node.id, index, events
    )


@functools.lru_cache(maxsize=64)
def _coordinator(name: str, instance: str) -> Any:
    """The coordinator actor `name`, looked up once per process and coordinator `instance` (its actor id).

    A lookup is a GCS round trip, and loads the actor's class in a process that has none yet. A coordinator
    started again after a crash has another actor id, so the runs it starts look it up again.
    """
    found = find_actor(name)
    if found is None:  # raised, not returned: the cache must not keep a coordinator that is not there
        raise ValueError(f"the run coordinator {name!r} is gone")
    return found


def node_task(packed: bytes | TaskSpec, *args: Any) -> Any:
    """The body of every node task: run the wrapper, report events to the coordinator, return outputs + meta.

    The spec arrives packed by the coordinator and the meta leaves packed (see `engine.execution.ray.wire`).
    """
    if not _WorkerHeap.settled:
        _WorkerHeap.settle(args)
    spec = unpack(packed)
    returned, meta = execute_task(spec, args, TaskEmitter(_sender(spec)))
    packed_meta = pack_meta(meta, this_node())
    return (*returned, packed_meta) if returned else packed_meta


class _WorkerHeap:
    """Takes a node worker's long-lived heap out of the garbage collector's scans, once.

    The engine's modules make a worker's heap several times bigger than a bare Ray worker's, and each full
    collection scanned all of it: about 2.5 ms each, 37 µs per task over a fan-out of tiny nodes, where a bare
    Ray worker spends 1 µs (issue 4, ADR 007). So, at the start of a node task, the worker collects once and
    freezes what is alive (`gc.freeze`): Ray, the engine and the modules imported so far.

    Frozen objects are never examined by the cyclic collector again (reference counting still frees them).
    To freeze no node data, this happens at the first task whose arguments are all atomic values, which
    cannot hold references (its spec arrives as bytes): a worker that only ever receives containers or
    tables is never frozen and collects as usual.
    """

    # A class attribute rather than module state: set on first use inside a worker, never at import.
    settled = False
    _ATOMIC = (bytes, str, int, float, bool, type(None))

    @classmethod
    def settle(cls, args: tuple[Any, ...]) -> None:
        """Collect and freeze the heap, unless done already or `args` could hold references."""
        if cls.settled or not all(isinstance(arg, cls._ATOMIC) for arg in args):
            return
        import gc

        cls.settled = True
        gc.collect()
        gc.freeze()


def collect(
    map_id: str, persist: tuple[str | Location, str, str, str] | None, *values: Any
) -> list[Any] | UpstreamFailure:
    """Gather a map node's element results, in order (a task, so the data never visits the coordinator).

    `persist` = (cache dir, cache key, node type, output port) writes the list to the durable cache.
    """
    for value in values:
        if isinstance(value, UpstreamFailure):
            return UpstreamFailure(map_id)
    result = list(values)
    if persist is not None:
        persist_map_result(*persist, result)
    return result


def collect_recorded(
    map_id: str,
    persist: tuple[str | Location, str, str, str] | None,
    record: tuple[MapResultRecorder, RunId, str],
    *values: Any,
) -> tuple[list[Any] | UpstreamFailure, BaseException | None]:
    """`collect` for a durable run, submitted with two returns: the list, and None once the list is kept by
    `record` = (recorder, run id, output port) — or the error that kept it from being kept. The coordinator
    waits for the second (small) return before it records the map node's success, so the list is durable
    first and never visits the coordinator."""
    result = collect(map_id, persist, *values)
    if isinstance(result, UpstreamFailure):
        return result, None
    recorder, run_id, port = record
    try:
        recorder.put(run_id, map_id, {port: result})
    except Exception as exc:  # the map node fails with it (an unwritable store, a value beyond the limits)
        return result, exc
    return result, None


class NodeActor:
    """Hosts stateful class nodes of one (node type, code version) for one run; setup() runs once."""

    def __init__(self) -> None:
        self.instances: dict[str, Any] = {}

    def run(self, packed: bytes | TaskSpec, *args: Any) -> Any:
        """Like `node_task`, reusing this actor's instance of the class."""
        _WorkerHeap.settle(args)
        spec = unpack(packed)
        returned, meta = execute_task(spec, args, TaskEmitter(_sender(spec)), instances=self.instances)
        packed_meta = pack_meta(meta, this_node())
        return (*returned, packed_meta) if returned else packed_meta


class RunOptions:
    """Per-run settings the caller passes to the coordinator (picklable)."""

    def __init__(
        self,
        *,
        fail_fast: bool = False,
        cache_dir: str | Location | None = None,
        check_types: bool = True,
        started_delay_s: float = 0.05,
        persist_nodes: frozenset[str] = frozenset(),
        breakers: BreakerClient | None = None,
        sink: EventSink | None = None,
        max_retries: int = 3,
        cache_scope: str = "",
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        policy: AccessPolicy | None = None,
        map_results: MapResultRecorder | None = None,
        config: Mapping[str, str] | None = None,
        secrets: RunSecrets | None = None,
    ) -> None:
        self.fail_fast = fail_fast
        self.cache_dir = cache_dir
        self.check_types = check_types
        self.started_delay_s = started_delay_s
        self.persist_nodes = persist_nodes
        self.breakers = breakers
        self.sink = sink
        self.max_retries = max_retries
        #: The scope of the run's cache keys (`compute_cache_keys`); tasks make their dynamic keys in it.
        self.cache_scope = cache_scope
        #: The most tasks of the run submitted to Ray and not yet finished; further ready nodes wait in the
        #: coordinator, in plan order, and go as tasks end (bounds the coordinator's memory on big runs).
        self.max_in_flight = max(1, max_in_flight)
        #: What the run's file and network nodes may reach (`engine.execution.access.policy_for`); without
        #: one, no file and no internal address.
        self.policy = policy if policy is not None else AccessPolicy()
        #: Where a durable run keeps its top-level map nodes' results (`engine.execution.mapping`); None for
        #: a run that is not durable.
        self.map_results = map_results
        #: Installation settings the run's nodes read from their context (`engine.execution.nodeconfig`).
        self.config = dict(config or {})
        #: The sealed secrets the run's nodes refer to (`engine.secrets.refs`); None when there are none.
        self.secrets = secrets


class RemoteRunResult:
    """What the coordinator hands back at the end: statuses, and refs (not values) of the outputs."""

    def __init__(
        self,
        status: RunStatus,
        nodes: dict[str, NodeResult],
        outputs: dict[str, Any],
        started_at: float | None,
        finished_at: float | None,
        node_refs: dict[NodeId, dict[str, Any]],
    ) -> None:
        self.status = status
        self.nodes = nodes
        self.outputs = outputs
        self.started_at = started_at
        self.finished_at = finished_at
        self.node_refs = node_refs


def shippable(planned: PlannedNode) -> PlannedNode:
    """The node without what a task never reads (its catalog spec travels with its definition already)."""
    members = tuple(replace(m, spec=None, subplan=None) for m in planned.members)
    return replace(planned, spec=None, subplan=None, members=members)
