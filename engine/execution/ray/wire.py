"""What travels between the coordinator and a node task: the packed `TaskSpec` in, the packed `TaskMeta` out.

Both go as one `bytes` value each: Ray passes bytes through without its own (cloudpickle) serialization,
which costs more than the pickling itself for the small values of tiny nodes. Every task pays these costs, so
they are kept low on both ends (issue 4, W1: a fan-out of a thousand tiny nodes).

**Node templates.** The bulk of a spec is its planned node (definition, parameters, types, retry policy) and
the run's settings. The nodes of a big fan-out share all of that and differ in their id, cache key, inputs
and persistence only. The coordinator therefore pickles a prototype spec once per run and kind of node
(`Templates`), and each task carries those bytes plus its own fields (`pack_task`). A worker unpickles each
distinct template once and keeps it (`_WorkerTemplates`, bounded), so a task costs the worker a dictionary
lookup and two shallow copies instead of rebuilding a dozen objects. Fused groups and nodes without a
definition travel whole (`pack`).

**Metas** are plain tuples (statuses by value), cheaper to build and read than the dataclasses.
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from engine.compile.plan import PlannedNode
from engine.execution.result import NodeError
from engine.execution.task import NodeOutcome, TaskMeta, TaskSpec
from nodes.ids import NodeId
from nodes.states import NodeStatus


def dumps(value: Any) -> bytes:
    """`value` pickled by the C pickler, or by cloudpickle when it refers to something a worker could not
    import by name (`__main__`, a function defined in a function), which cloudpickle ships by value."""
    try:
        data = pickle.dumps(value, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        data = b""
    if not data or b"__main__" in data:
        from ray import cloudpickle

        data = cloudpickle.dumps(value)  # type: ignore[no-untyped-call]
    return bytes(data)


#: The id of a template (its nodes' ids differ).
_NO_ID = NodeId("")


def template_of(planned: PlannedNode) -> PlannedNode:
    """`planned` without what differs between nodes of the same kind (id, bindings, cache key, Ray options)
    and without what a task never reads (its catalog spec: it travels with the definition already)."""
    return replace(planned, id=_NO_ID, inputs={}, cache_key=None, ray_options={}, spec=None, subplan=None)


class Templates:
    """The coordinator's side: the pickled prototype spec of each kind of planned node in one run.

    Nodes are grouped by the identity of the objects the compiler shares between nodes of the same type
    (definition, types, retry policy) and by their remaining fields, so a lookup costs a tuple, not a
    pickling. Keys hold object ids, so a `Templates` must not outlive the plan whose nodes it was given.
    """

    def __init__(self) -> None:
        self._bytes: dict[Hashable, bytes] = {}

    def get(self, planned: PlannedNode, prototype: Callable[[PlannedNode], TaskSpec]) -> bytes | None:
        """The template bytes for `planned`, or None when it travels whole (a fused group).

        `prototype(node)` makes the spec every task of this kind shares, for `node = template_of(planned)`:
        everything but the fields `pack_task` carries must be the same for all nodes of one kind in a run.
        """
        if planned.members or planned.definition is None:
            return None
        key = (
            planned.type_id,
            id(planned.definition),
            id(planned.params) if planned.params else None,
            id(planned.retry),
            planned.timeout_s,
            planned.outputs,
            id(planned.coercions) if planned.coercions else None,
            id(planned.input_types),
            id(planned.output_types),
            planned.cache,
            planned.deterministic,
        )
        found = self._bytes.get(key)
        if found is None:
            found = self._bytes[key] = dumps(prototype(template_of(planned)))
        return found


class TaskFields(NamedTuple):
    """What a task of a template carries of its own (the rest of its spec is the template's)."""

    node_id: str
    cache_key: str | None
    arg_keys: tuple[str, ...]
    consts: Mapping[str, Any]
    lists: Mapping[str, int]
    prefix: str
    persist: bool


def pack_task(template: bytes, own: TaskFields) -> bytes:
    """One task's spec as bytes: its template (from `Templates.get`) and the fields of its own."""
    return dumps((template, tuple(own)))


def pack(spec: TaskSpec) -> bytes:
    """`spec` as one bytes value, whole (its node must be `shippable`)."""
    return dumps((None, spec))


def unpack(packed: bytes | TaskSpec) -> TaskSpec:
    """The spec `pack_task` or `pack` made (a spec passed as is is returned unchanged)."""
    if not isinstance(packed, bytes):
        return packed
    data = pickle.loads(packed)  # cloudpickle output is ordinary pickle data
    if data[0] is None:
        spec: TaskSpec = data[1]
        return spec
    return _worker_templates().spec(data[0], TaskFields(*data[1]))


class _WorkerTemplates:
    """A worker's unpickled templates, by their bytes (least recently used dropped beyond `LIMIT`)."""

    LIMIT = 512

    def __init__(self) -> None:
        self._templates: OrderedDict[bytes, TaskSpec] = OrderedDict()
        self._lock = threading.Lock()  # threaded actors run several tasks at once

    def spec(self, template: bytes, own: TaskFields) -> TaskSpec:
        """The spec `pack_task` packed: the template's, with the task's own fields."""
        with self._lock:
            base = self._templates.get(template)
            if base is None:
                base = self._templates[template] = pickle.loads(template)
                if len(self._templates) > self.LIMIT:
                    self._templates.popitem(last=False)
            else:
                self._templates.move_to_end(template)
        # Shallow copies with some fields changed, as `dataclasses.replace` would make but without running
        # `__init__` again: both are frozen, and their fields were checked when the plan was made.
        node: PlannedNode = object.__new__(PlannedNode)
        fields = node.__dict__
        fields.update(base.node.__dict__)
        fields["id"] = own.node_id
        fields["cache_key"] = own.cache_key
        spec: TaskSpec = object.__new__(TaskSpec)
        fields = spec.__dict__
        fields.update(base.__dict__)
        fields["node"] = node
        fields["arg_keys"] = own.arg_keys
        fields["consts"] = own.consts
        fields["lists"] = own.lists
        fields["persist"] = own.persist
        if own.prefix:
            fields["extra"] = {**base.extra, "prefix": own.prefix}
        return spec


@functools.cache
def _worker_templates() -> _WorkerTemplates:
    """The templates of this process, made on first use inside a worker (never at import)."""
    return _WorkerTemplates()


def pack_meta(meta: TaskMeta, placement: tuple[str, str] | None = None) -> bytes:
    """The meta as bytes: plain tuples (statuses by value) pickled by the C pickler; `placement` (see
    `this_node`), when given, replaces the meta's."""
    outcomes = tuple(
        (
            o.node,
            o.type_id,
            o.status.value,
            o.attempts,
            o.started_at,
            o.finished_at,
            _error_wire(o.error),
            o.cpu_s,
            o.memory_bytes,
            o.output_bytes,
        )
        for o in meta.outcomes
    )
    return pickle.dumps(
        (
            meta.node,
            outcomes,
            meta.events_sent,
            meta.started_at,
            meta.finished_at,
            placement or meta.placement,
        ),
        protocol=5,
    )


def unpack_meta(value: Any) -> Any:
    """The `TaskMeta` that `pack_meta` made (anything else, such as an exception, is returned unchanged)."""
    if not isinstance(value, bytes):
        return value
    node, outcomes, events_sent, started_at, finished_at, placement = pickle.loads(value)
    return TaskMeta(
        node,
        tuple(
            NodeOutcome(
                name,
                type_id,
                _STATUS[status],
                attempts,
                started,
                finished,
                _error(error),
                cpu_s,
                memory,
                size,
            )
            for name, type_id, status, attempts, started, finished, error, cpu_s, memory, size in outcomes
        ),
        events_sent,
        started_at,
        finished_at,
        placement,
    )


def this_node() -> tuple[str, str] | None:
    """The Ray node this process runs on, as (node id, node IP address); None when not connected to Ray."""
    import ray

    return _this_node() if ray.is_initialized() else None


@functools.cache
def _this_node() -> tuple[str, str]:
    """Asked of Ray once per process (a worker never moves to another node): a task pays a function call."""
    import ray

    context = ray.get_runtime_context()
    return (str(context.get_node_id()), str(ray.util.get_node_ip_address()))  # type: ignore[no-untyped-call]


#: Statuses by value (a dictionary lookup is several times cheaper than calling the enum).
_STATUS = {status.value: status for status in NodeStatus}


def _error_wire(error: NodeError | None) -> tuple[str, int, str, str, str] | None:
    if error is None:
        return None
    return (error.node, error.attempt, error.type, error.message, error.traceback)


def _error(wire: tuple[str, int, str, str, str] | None) -> NodeError | None:
    return None if wire is None else NodeError(*wire)
