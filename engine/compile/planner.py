"""Pass 6, plan: turn the checked, pruned and optimized graph into the executable `Plan`.

Each node gets its Ray options from ``nodes.ray_options.task_options`` (a readable task name
``"<workflow>/<node>:<type>"``, its resources, and the ``runtime_env`` of the plugin version that defines it —
none for built-in and local nodes), its retry policy (the node type's, with the
document's overrides), timeout and cache switch. Fusion groups become one `PlannedNode` each with the node's
members, and references to members from outside are rewritten to the group (see `engine.compile.plan`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import typesys
from engine.compile.options import effective_cache, effective_resources, effective_retry, effective_timeout
from engine.compile.plan import FUSED_PREFIX, FUSED_TYPE_ID, Plan, PlannedInput, PlannedNode
from engine.secrets.refs import secret_names
from engine.workflow.bindings import (
    Binding,
    InputRef,
    ListBinding,
    NodeRef,
    Single,
    element_key,
    map_leaves,
    node_refs,
)
from engine.workflow.graph import GraphNode, WorkflowGraph, evolve
from nodes.ids import NodeId
from nodes.ray_options import task_options


def build_plan(
    graph: WorkflowGraph,
    groups: Sequence[Sequence[str]] = (),
    aliases: Mapping[NodeId, NodeId] | None = None,
) -> Plan:
    """The plan of ``graph`` (every node resolved and typed) with ``groups`` fused into single tasks.

    ``aliases`` are the duplicates the optimizer removed (dropped id -> kept id), recorded on the plan.
    """
    readers = _readers(graph)
    used: dict[str, set[str]] = {}
    for node_id, port in readers:
        used.setdefault(node_id, set()).add(port)
    owner = {member: NodeId(FUSED_PREFIX + group[0]) for group in groups for member in group}

    def rename_one(single: Single) -> Single:
        if isinstance(single, NodeRef) and single.node in owner:
            return NodeRef(owner[single.node], f"{single.node}.{single.port}")
        return single

    def rename(binding: Binding) -> Binding:
        return map_leaves(binding, rename_one)

    singles: dict[str, PlannedNode] = {}
    for node in graph.nodes.values():
        planned = _plan_node(graph.name, node, used.get(node.id, ()))
        if owner and node.id not in owner:
            planned = _with_inputs(planned, {p: rename(b) for p, b in planned.inputs.items()})
        singles[node.id] = planned
    units: dict[str, PlannedNode] = {}
    for group in groups:
        fused = _plan_group(graph.name, [singles[m] for m in group], readers, rename)
        units[fused.id] = fused
    for node_id, planned in singles.items():
        if node_id not in owner:
            units[node_id] = planned
    outputs = {name: rename(b) for name, b in graph.outputs.items()}
    output_types = {name: _binding_type(graph, b) for name, b in graph.outputs.items()}
    inputs = {
        name: PlannedInput(
            name=name,
            type=spec.type if spec.type is not None else typesys.ANY,
            required=not spec.has_default,
            default=spec.default,
            description=spec.description,
        )
        for name, spec in graph.inputs.items()
    }
    # Without groups the graph's own order is already topological; groups need a new order.
    ordered = _topological(units, graph) if groups else tuple(units.values())
    return Plan(
        name=graph.name,
        nodes=ordered,
        outputs=outputs,
        inputs=inputs,
        output_types=output_types,
        aliases=dict(aliases or {}),
    )


def _plan_node(workflow: str, node: GraphNode, outputs: Collection[str]) -> PlannedNode:
    spec = node.spec
    if spec is None:
        raise ValueError(
            f"workflow {workflow!r}: node {node.id!r} was not resolved; validate the workflow first"
        )
    overridden = node.options is not None and node.options.resources is not None
    options = task_options(
        effective_resources(spec, node.options) if overridden else spec.resources,
        name=f"{workflow}/{node.id}:{node.type_id}",
        # A plugin node runs only inside its plugin version's runtime environment (its code, its requirements).
        runtime_env=getattr(node.definition, "runtime_env", None),
    )
    return PlannedNode(
        id=node.id,
        type_id=node.type_id,
        definition=node.definition,
        spec=spec,
        inputs=node.bindings,
        params=node.params,
        retry=effective_retry(spec, node.options),
        timeout_s=effective_timeout(spec, node.options),
        ray_options=options,
        outputs=tuple(p.name for p in spec.outputs if p.name in outputs),
        coercions=node.coercions,
        input_types=node.input_types,
        output_types=node.output_types,
        # A node given a secret is never cached: its result would answer a rerun by anyone, with any value
        # of the secret (the plan holds only the reference).
        cache=effective_cache(spec, node.options) and not secret_names(node.params),
        deterministic=spec.deterministic,
        subplan=node.subplan,
    )


def _with_inputs(planned: PlannedNode, inputs: Mapping[str, Binding]) -> PlannedNode:
    return evolve(planned, inputs=dict(inputs))


def _plan_group(
    workflow: str, members: list[PlannedNode], readers: Mapping[tuple[str, str], set[str]], rename: Any
) -> PlannedNode:
    ids = {m.id for m in members}
    group_id = NodeId(FUSED_PREFIX + members[0].id)
    inputs: dict[str, Binding] = {}
    input_types: dict[str, Any] = {}
    planned_members = []
    for member in members:
        bindings: dict[str, Binding] = {}
        for port, binding in member.inputs.items():
            if isinstance(binding, NodeRef) and binding.node in ids:
                bindings[port] = binding
                continue
            if isinstance(binding, ListBinding):
                # Items from other members are read inside the task; the rest become group inputs, one each.
                bindings[port] = binding
                item_type = _item_type(member.input_types.get(port))
                for index, item in enumerate(binding.items):
                    if isinstance(item, NodeRef) and item.node in ids:
                        continue
                    key = f"{member.id}.{element_key(port, index)}"
                    inputs[key] = rename(item)
                    if item_type is not None:
                        input_types[key] = item_type
                continue
            outside = rename(binding)
            bindings[port] = outside
            inputs[f"{member.id}.{port}"] = outside
            if port in member.input_types:
                input_types[f"{member.id}.{port}"] = member.input_types[port]
        planned_members.append(evolve(member, inputs=bindings))
    outputs: list[str] = []
    output_types: dict[str, Any] = {}
    for member in members:
        for port in member.outputs:
            if readers.get((member.id, port), set()) - ids:
                outputs.append(f"{member.id}.{port}")
                output_types[f"{member.id}.{port}"] = member.output_types[port]
    retry = max((m.retry for m in members), key=lambda r: r.max_attempts)
    return PlannedNode(
        id=group_id,
        type_id=FUSED_TYPE_ID,
        definition=None,
        spec=None,
        inputs=inputs,
        params={},
        retry=retry,
        timeout_s=None,
        # Members share one runtime environment (`engine.compile.optimize.fusion_groups`): a plugin's.
        ray_options=task_options(
            name=f"{workflow}/{group_id}:{FUSED_TYPE_ID}",
            runtime_env=members[0].ray_options.get("runtime_env"),
        ),
        outputs=tuple(outputs),
        input_types=input_types,
        output_types=output_types,
        cache=all(m.cache for m in members),
        deterministic=True,
        members=tuple(planned_members),
    )


def _readers(graph: WorkflowGraph) -> dict[tuple[str, str], set[str]]:
    """(node id, output port) -> ids of the nodes reading it; a workflow output counts as reader ``""``."""
    readers: dict[tuple[str, str], set[str]] = {}
    for node in graph.nodes.values():
        for binding in node.bindings.values():
            for ref in node_refs(binding):
                key = (ref.node, ref.port)
                found = readers.get(key)
                if found is None:
                    readers[key] = {node.id}
                else:
                    found.add(node.id)
    for binding in graph.outputs.values():
        if isinstance(binding, NodeRef):
            readers.setdefault((binding.node, binding.port), set()).add("")
    return readers


def _item_type(port_type: Any) -> Any:
    """The element type of a list port's type (None when it is not a plain list type)."""
    return port_type.item if isinstance(port_type, typesys.ListType) else None


def _binding_type(graph: WorkflowGraph, binding: Binding) -> Any:
    if isinstance(binding, NodeRef):
        node = graph.nodes.get(binding.node)
        return None if node is None else node.output_types.get(binding.port)
    if isinstance(binding, InputRef):
        spec = graph.inputs.get(binding.name)
        return None if spec is None else spec.type
    return None


def _topological(units: Mapping[str, PlannedNode], graph: WorkflowGraph) -> tuple[PlannedNode, ...]:
    """Order plan nodes so each comes after those it reads from; ties follow the document's order."""
    position = {node_id: i for i, node_id in enumerate(graph.nodes)}

    def rank(unit: PlannedNode) -> int:
        first = unit.members[0].id if unit.members else unit.id
        return position.get(first, 0)

    deps = {uid: set(unit.upstream()) - {uid} for uid, unit in units.items()}
    readers: dict[str, list[str]] = {uid: [] for uid in units}
    for uid, ups in deps.items():
        for up in ups:
            readers[up].append(uid)
    waiting = {uid: len(ups) for uid, ups in deps.items()}
    ready = deque(sorted((uid for uid, n in waiting.items() if n == 0), key=lambda u: rank(units[u])))
    order: list[PlannedNode] = []
    while ready:
        uid = ready.popleft()
        order.append(units[uid])
        for reader in readers[uid]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    if len(order) != len(units):
        raise ValueError(f"workflow {graph.name!r}: the fused plan has a cycle; compile with optimize=False")
    return tuple(order)
