"""What travels between the coordinator and a node task: the packed `TaskSpec` in, the packed `TaskMeta` out.

Both go as one `bytes` value each: Ray passes bytes through without its own (cloudpickle) serialization,
which costs more than the pickling itself for the small values of tiny nodes. Every task pays these costs, so
they are kept low on both ends (issue 4, W1: a fan-out of a thousand tiny nodes).

**Node templates.** The bulk of a spec is its planned node: definition, parameters, types, retry policy. The
nodes of a big fan-out share all of that and differ in their id and cache key only. The coordinator therefore
pickles the shared part once per run (`Templates`) and each task carries those bytes plus its own id and
cache key; a worker unpickles each distinct template once and keeps it (`_WorkerTemplates`, bounded), so a
task costs the worker a dictionary lookup instead of rebuilding a dozen objects. Fused groups and nodes
without a definition travel whole.

**Metas** are plain tuples (statuses by value), cheaper to build and read than the dataclasses.
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import fields, replace
from typing import Any

from engine.compile.plan import PlannedNode
from engine.execution.result import NodeError
from engine.execution.status import NodeStatus
from engine.execution.task import NodeOutcome, TaskMeta, TaskSpec

#: The fields of `TaskSpec` in order; all but the node travel as they are.
_SPEC_FIELDS = tuple(f.name for f in fields(TaskSpec))
_NODE_AT = _SPEC_FIELDS.index("node")


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


def template_of(planned: PlannedNode) -> PlannedNode:
    """`planned` without what differs between nodes of the same kind (id, bindings, cache key, Ray options)
    and without what a task never reads (its catalog spec: it travels with the definition already)."""
    return replace(planned, id="", inputs={}, cache_key=None, ray_options={}, spec=None, subplan=None)


class Templates:
    """The coordinator's side: the pickled template of each kind of planned node in one run.

    Nodes are grouped by the identity of the objects the compiler shares between nodes of the same type
    (definition, types, retry policy) and by their remaining fields, so a lookup costs a tuple, not a
    pickling. Keys hold object ids, so a `Templates` must not outlive the plan whose nodes it was given.
    """

    def __init__(self) -> None:
        self._bytes: dict[Hashable, bytes] = {}

    def get(self, planned: PlannedNode) -> bytes | None:
        """The template bytes for `planned`, or None when it travels whole (a fused group)."""
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
            found = self._bytes[key] = dumps(template_of(planned))
        return found


def pack(spec: TaskSpec, template: bytes | None = None) -> bytes:
    """`spec` as one bytes value. With `template` (from `Templates.get(spec.node)`), the node travels as
    those bytes plus its id and cache key; without, the node travels whole and must be `shippable`."""
    rest = [getattr(spec, name) for name in _SPEC_FIELDS]
    rest[_NODE_AT] = None
    if template is not None:
        return dumps((template, spec.node.id, spec.node.cache_key, rest))
    return dumps((None, spec.node, None, rest))


def unpack(packed: bytes | TaskSpec) -> TaskSpec:
    """The spec `pack` made (a spec passed as is is returned unchanged)."""
    if not isinstance(packed, bytes):
        return packed
    template, node, cache_key, rest = pickle.loads(packed)  # cloudpickle output is ordinary pickle data
    if template is not None:
        node = _worker_templates().node(template, node, cache_key)
    rest[_NODE_AT] = node
    return TaskSpec(*rest)


class _WorkerTemplates:
    """A worker's unpickled templates, by their bytes (least recently used dropped beyond `LIMIT`)."""

    LIMIT = 512

    def __init__(self) -> None:
        self._templates: OrderedDict[bytes, PlannedNode] = OrderedDict()
        self._lock = threading.Lock()  # threaded actors run several tasks at once

    def node(self, template: bytes, node_id: str, cache_key: str | None) -> PlannedNode:
        """The planned node `template` stands for, with its own id and cache key."""
        with self._lock:
            base = self._templates.get(template)
            if base is None:
                base = self._templates[template] = pickle.loads(template)
                if len(self._templates) > self.LIMIT:
                    self._templates.popitem(last=False)
            else:
                self._templates.move_to_end(template)
        # A shallow copy with two fields changed, as `dataclasses.replace` would make but without running
        # `__init__` again: the node is frozen and its fields were checked when the plan was made.
        node: PlannedNode = object.__new__(PlannedNode)
        node.__dict__.update(base.__dict__)
        node.__dict__["id"] = node_id
        node.__dict__["cache_key"] = cache_key
        return node


@functools.cache
def _worker_templates() -> _WorkerTemplates:
    """The templates of this process, made on first use inside a worker (never at import)."""
    return _WorkerTemplates()


def pack_meta(meta: TaskMeta) -> bytes:
    """The meta as bytes: plain tuples (statuses by value) pickled by the C pickler."""
    outcomes = tuple(
        (o.node, o.type_id, o.status.value, o.attempts, o.started_at, o.finished_at, _error_wire(o.error))
        for o in meta.outcomes
    )
    return pickle.dumps(
        (meta.node, outcomes, meta.events_sent, meta.started_at, meta.finished_at), protocol=5
    )


def unpack_meta(value: Any) -> Any:
    """The `TaskMeta` that `pack_meta` made (anything else, such as an exception, is returned unchanged)."""
    if not isinstance(value, bytes):
        return value
    node, outcomes, events_sent, started_at, finished_at = pickle.loads(value)
    return TaskMeta(
        node,
        tuple(
            NodeOutcome(name, type_id, NodeStatus(status), attempts, started, finished, _error(error))
            for name, type_id, status, attempts, started, finished, error in outcomes
        ),
        events_sent,
        started_at,
        finished_at,
    )


def _error_wire(error: NodeError | None) -> tuple[str, int, str, str, str] | None:
    if error is None:
        return None
    return (error.node, error.attempt, error.type, error.message, error.traceback)


def _error(wire: tuple[str, int, str, str, str] | None) -> NodeError | None:
    return None if wire is None else NodeError(*wire)
