"""The compiled form of a workflow: what the executor runs.

A `Plan` is the output of `engine.compile.compile_workflow` and the only thing the executor needs. It is
immutable (frozen dataclasses; mappings are never mutated after construction - copy with changes instead)
and picklable with cloudpickle, so it can be shipped to a run coordinator actor.

Shape
-----
``Plan.nodes`` lists the planned nodes in a topological order: every node appears after every node it reads
from, so an executor may walk the tuple once and submit each node with references to its upstream results.

Each `PlannedNode` binds every input port it receives a value on to a `Binding`:

* ``NodeRef(node, port)`` - the value of output ``port`` of the top-level plan node ``node``. For a fused
  group (see below) ``port`` is ``"<member>.<member port>"``.
* ``InputRef(name)`` - the workflow input ``name`` (its default applied when the caller gave none; see
  ``Plan.inputs``).
* ``Const(value)`` - a constant from the document (``{"value": ...}``) or a parameter default.
* ``ListBinding(items)`` - a list port bound element by element (ADR 005): the node receives the list of the
  items' values. Implicit coercions of elements are recorded under ``element_key(port, i)`` = ``"port[i]"``.
  A failed element fails the node; a skipped element skips it, unless the node accepts skipped inputs, in
  which case skipped elements are left out of the list.

Input ports that are absent from ``inputs`` are optional ports left unbound: the node's own default applies.
Before a value bound to port ``p`` is passed to the node, ``coercions[p].apply(value)`` is applied when
``p`` is in ``coercions`` (the implicit, lossless coercions the type checker recorded on that edge, such as
``Int -> Float``). ``input_types`` / ``output_types`` are the port types after type-variable unification,
which the executor uses for the runtime checks of values crossing ports.

``outputs`` names the output ports of the node that something downstream (another node or a workflow
output) reads; the executor needs to keep only those.

Fused groups
------------
When the optimizer fuses a connected group of cheap nodes, the group becomes a single PlannedNode with
``members`` non-empty, ``definition is None``, ``type_id == FUSED_TYPE_ID`` and an id of the form
``"fused:<first member id>"`` (``:`` never occurs in a document node id, so this never collides). It runs as
one task which runs its members in order (``members`` is topologically ordered), each member being an
ordinary PlannedNode with its own bindings, coercions, params and types:

* a member's ``NodeRef`` naming another member of the same group reads that member's result inside the task;
* every other binding of a member (another top-level node, a workflow input, a constant) also appears in the
  group's ``inputs`` under the key ``"<member id>.<port>"``, so the executor resolves the group's external
  inputs exactly like those of any other node and passes them in; for a member's ``ListBinding``, each item
  that is not a member's output appears under ``"<member id>.<port>[<i>]"`` instead (the group's inputs are
  never lists themselves);
* the group's ``outputs`` are the member outputs used outside the group, named ``"<member id>.<port>"``, and
  downstream bindings (and ``Plan.outputs``) refer to them as ``NodeRef("fused:...", "<member id>.<port>")``;
  the group's ``input_types``/``output_types`` use the same ``"<member id>.<port>"`` keys, its ``coercions``
  are empty (each member carries its own) and its ``cache`` is True only when every member's is.

Fused members are always deterministic, non-generator, non-control nodes without custom resources or
timeouts; each keeps its own ``retry`` policy, but the group's ``retry`` is the strictest of them so retrying
the whole group is the unit the engine retries.

Map nodes
---------
A node whose spec has ``control == "map"`` (``builtin/map@1``) carries ``subplan``: the compiled
sub-workflow from its ``workflow`` param, which the engine runs once per element of its ``items`` input,
binding the element to the sub-plan's workflow input ``item`` and, when the sub-plan declares it, the
element's position to ``index``; the sub-plan's output ``out`` gives the element of the resulting list.
The map node's ``definition`` is still the catalog definition (the engine expands it and never calls it).

Validators
----------
``validators`` (of a node, and of the plan for its workflow inputs) is None, or a small `TypeRegistry` holding
the validators of the nominal and model types among the port types (`TypeRegistry.validators_for`): the
executor checks the values crossing the ports with it, so custom types' validators run where the node runs.

Cache keys
----------
``cache_key`` is None in a freshly compiled plan, because keys depend on the workflow input values.
`engine.compile.cache_keys.compute_cache_keys(plan, inputs)` computes them; `Plan.with_cache_keys(keys)`
returns a copy with them filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.workflow.bindings import (
    Binding,
    Const,
    InputRef,
    ListBinding,
    NodeRef,
    element_key,
    flatten,
    node_refs,
)
from nodes.ids import NodeId, NodeTypeId

if TYPE_CHECKING:
    from nodes import NodeDefinition, NodeSpec, RetryPolicy
    from typesys import Coercion, Type

#: The `type_id` of a fused group of nodes (it is not a catalog type).
FUSED_TYPE_ID = NodeTypeId("rayweave/fused@1")
#: The prefix of the id of a fused group; the rest is the id of its first member.
FUSED_PREFIX = "fused:"

__all__ = [
    "FUSED_PREFIX",
    "FUSED_TYPE_ID",
    "Binding",
    "Const",
    "InputRef",
    "ListBinding",
    "NodeRef",
    "Plan",
    "PlannedInput",
    "PlannedNode",
    "element_key",
    "flatten",
    "node_refs",
]


@dataclass(frozen=True)
class PlannedInput:
    """A workflow input as the plan sees it: its declared type and default.

    ``required`` is True when the document gives no default; the caller must then supply a value.
    """

    name: str
    type: Type
    required: bool = True
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class PlannedNode:
    """One unit of execution: a node (or a fused group of nodes) with everything needed to run it.

    See the module docstring for the meaning of each field and the rules for fused groups and map nodes.
    ``ray_options`` is ready to pass to ``ray.remote(...).options(**ray_options)``, made by
    ``nodes.ray_options.task_options``: a readable ``name`` (``"<workflow>/<node>:<type>"``), resources
    (``num_cpus``, ``num_gpus``, ``memory``, ``resources``), a plugin node's ``runtime_env`` and
    ``retry_exceptions=False``. Retries of node exceptions are the engine's job (``retry``); ``timeout_s`` is
    the per-attempt timeout or None.
    """

    id: NodeId
    type_id: NodeTypeId
    definition: NodeDefinition | None
    spec: NodeSpec | None
    inputs: Mapping[str, Binding]
    params: Mapping[str, Any]
    retry: RetryPolicy
    timeout_s: float | None
    ray_options: Mapping[str, Any]
    outputs: tuple[str, ...] = ()
    coercions: Mapping[str, Coercion] = field(default_factory=dict)
    input_types: Mapping[str, Type] = field(default_factory=dict)
    output_types: Mapping[str, Type] = field(default_factory=dict)
    cache: bool = True
    deterministic: bool = True
    cache_key: str | None = None
    members: tuple[PlannedNode, ...] = ()
    subplan: Plan | None = None
    validators: Any = field(default=None, compare=False, repr=False)

    @property
    def is_fused(self) -> bool:
        """True for a fused group (it has members and no definition of its own)."""
        return bool(self.members)

    def upstream(self) -> tuple[NodeId, ...]:
        """Ids of the top-level plan nodes this node reads from, in first-seen order, without duplicates."""
        seen: dict[NodeId, None] = {}
        for binding in self.inputs.values():
            for ref in node_refs(binding):
                seen.setdefault(ref.node, None)
        return tuple(seen)


@dataclass(frozen=True)
class Plan:
    """A compiled workflow: planned nodes in topological order, workflow inputs and outputs.

    ``outputs`` maps each requested workflow output name to its binding (usually a `NodeRef`; a workflow
    output may also be bound directly to a workflow input). ``output_types`` gives the type of each one.
    ``aliases`` maps the id of each document node the optimizer removed as a duplicate to the id of the
    identical node that computes its values instead, so a run can still report a state for every node.
    """

    name: str
    nodes: tuple[PlannedNode, ...]
    outputs: Mapping[str, Binding]
    inputs: Mapping[str, PlannedInput] = field(default_factory=dict)
    output_types: Mapping[str, Type] = field(default_factory=dict)
    aliases: Mapping[NodeId, NodeId] = field(default_factory=dict)
    validators: Any = field(default=None, compare=False, repr=False)
    #: The stored workflow's version the plan was compiled from; for a document that is not stored, its content
    #: hash (`engine.compile.pipeline.document_version`: `sha256:` and 16 hex digits).
    version: str = field(default="", compare=False)

    def node(self, node_id: str) -> PlannedNode:
        """Return the top-level planned node ``node_id``; raises KeyError naming the known ids if absent."""
        for planned in self.nodes:
            if planned.id == node_id:
                return planned
        known = ", ".join(p.id for p in self.nodes) or "none"
        raise KeyError(f"plan {self.name!r} has no node {node_id!r} (nodes: {known})")

    def node_ids(self) -> tuple[str, ...]:
        """The ids of the top-level planned nodes, in topological order."""
        return tuple(p.id for p in self.nodes)

    def downstream(self) -> dict[str, tuple[str, ...]]:
        """Map each top-level node id to the ids of the nodes that read from it (topological order)."""
        result: dict[str, list[str]] = {p.id: [] for p in self.nodes}
        for planned in self.nodes:
            for up in planned.upstream():
                result[up].append(planned.id)
        return {k: tuple(v) for k, v in result.items()}

    def with_cache_keys(self, keys: Mapping[str, str | None]) -> Plan:
        """Return a copy whose nodes (and fused members) carry the cache keys in ``keys`` (by node id)."""

        def fill(planned: PlannedNode) -> PlannedNode:
            members = tuple(fill(m) for m in planned.members)
            return replace(planned, cache_key=keys.get(planned.id), members=members)

        return replace(self, nodes=tuple(fill(p) for p in self.nodes))
