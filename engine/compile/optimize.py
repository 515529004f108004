"""Pass 5, optimize: remove duplicate sub-graphs and fuse groups of cheap nodes into one task.

Both rewrites keep every result the same; ``compile_workflow(..., optimize=False)`` skips them.

Deduplication: two deterministic nodes of the same type, with the same params, options and inputs (after
earlier duplicates were merged) compute the same values, so the later one is dropped and everything that
read it reads the first one instead. Working in topological order merges whole identical sub-graphs.

Fusion: a node is *fusable* when its spec says ``cheap``, it is deterministic, a plain function (not a
generator, class or control node) and it asks for no special resources or timeout. Fusable nodes are grouped
when they are connected by an edge and have the same *frontier*: the set of non-fusable nodes reached by
walking upstream through fusable nodes only. Equal frontiers mean equal sets of expensive ancestors, so

* a group never waits for an expensive node that any of its members would not have waited for anyway - no
  expensive node is ever delayed or serialised by fusion, only cheap work is batched; and
* the graph of groups stays acyclic (a path leaving a group through an expensive node and coming back would
  make that node its own ancestor).

A fan-out of a thousand cheap nodes into a cheap sum is therefore one task, and a chain of cheap nodes too.

A fused task runs in one runtime environment, so nodes of different environments (a plugin version's, or
none for local and built-in nodes) never share a group: groups are formed environment by environment, with
the fusable nodes of every other environment standing as expensive ones, which keeps the argument above (and
so the graph of groups acyclic) for each environment's groups.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from engine.compile.options import effective_resources, effective_timeout
from engine.workflow.bindings import Binding, InputRef, ListBinding, NodeRef, Single, leaves, map_leaves
from engine.workflow.graph import GraphNode, WorkflowGraph, evolve
from nodes.ids import NodeId


@dataclass(frozen=True)
class Optimized:
    """The optimized graph, its fusion groups (node ids in topological order, two or more each) and the
    duplicates removed (``merged``: dropped id -> kept id; chains are resolved to the kept node)."""

    graph: WorkflowGraph
    groups: tuple[tuple[str, ...], ...]
    merged: dict[NodeId, NodeId]


def optimize(graph: WorkflowGraph, *, enabled: bool = True) -> Optimized:
    """Deduplicate then fuse (both skipped when ``enabled`` is False)."""
    if not enabled:
        return Optimized(graph, (), {})
    deduped, merged = deduplicate(graph)
    return Optimized(deduped, fusion_groups(deduped), merged)


def deduplicate(graph: WorkflowGraph) -> tuple[WorkflowGraph, dict[NodeId, NodeId]]:
    """Drop nodes identical to an earlier one; returns the new graph and ``{dropped id: kept id}``."""
    merged: dict[NodeId, NodeId] = {}
    seen: dict[Hashable, NodeId] = {}
    nodes: list[GraphNode] = []
    for node in graph.nodes.values():
        if merged:
            node = evolve(node, bindings={p: _rename(b, merged) for p, b in node.bindings.items()})
        key = _identity(node)
        if key is not None:
            first = seen.get(key)
            if first is not None:
                merged[node.id] = first
                continue
            seen[key] = node.id
        nodes.append(node)
    if not merged:
        return graph, merged
    outputs = {name: _rename(b, merged) for name, b in graph.outputs.items()}
    return graph.replace_nodes(nodes, outputs=outputs), merged


def _rename(binding: Binding, merged: dict[NodeId, NodeId]) -> Binding:
    def one(single: Single) -> Single:
        if isinstance(single, NodeRef) and single.node in merged:
            return NodeRef(merged[single.node], single.port)
        return single

    return map_leaves(binding, one)


def _identity(node: GraphNode) -> Hashable | None:
    """A key of everything that determines the node's results, or None if it may not be merged."""
    spec = node.spec
    if spec is None or not spec.deterministic or spec.kind in ("generator", "async_generator"):
        return None
    if node.subplan is not None and not _deterministic(node.subplan):
        return None  # a map over a random sub-workflow: two copies must draw twice
    bindings: list[Any] = []
    try:
        for port, binding in node.bindings.items():
            keys = tuple(_single_identity(single) for single in leaves(binding))
            bindings.append((port, "list" if isinstance(binding, ListBinding) else "one", keys))
        params = _canonical(dict(node.params)) if node.params else ""
    except (TypeError, ValueError):
        return None  # a value that is not plain JSON: compare nothing rather than guess
    options = node.options
    overrides = (
        None
        if options is None
        else (repr(options.retry), options.timeout_s, repr(options.resources), options.cache, options.convert)
    )
    return (
        node.type_id,
        spec.code_version,
        params,
        tuple(sorted(bindings)),
        overrides,
        tuple(node.coercions),
    )


def _single_identity(binding: Single) -> Hashable:
    if isinstance(binding, NodeRef):
        return ("node", binding.node, binding.port)
    if isinstance(binding, InputRef):
        return ("input", binding.name)
    return ("const", _canonical(binding.value))


def _deterministic(plan: Any) -> bool:
    """True when every node of ``plan`` (members and nested sub-plans included) is deterministic."""
    for planned in plan.nodes:
        for node in planned.members or (planned,):
            if not node.deterministic or (node.subplan is not None and not _deterministic(node.subplan)):
                return False
    return True


def _canonical(value: Any) -> Hashable:
    # Scalars are their own key (tagged by type so 1, 1.0 and True stay apart); JSON for the rest.
    if value is None or isinstance(value, bool | int | float | str):
        return (type(value).__name__, value)
    return json.dumps(value, sort_keys=True, allow_nan=False)


def fusable(node: GraphNode) -> bool:
    """True when ``node`` may run inside a fused task (see the module docstring)."""
    spec = node.spec
    if spec is None or not spec.cheap or not spec.deterministic:
        return False
    if spec.kind not in ("function", "async") or spec.control is not None or node.subplan is not None:
        return False
    if effective_timeout(spec, node.options) is not None:
        return False
    options = effective_resources(spec, node.options).to_ray_options()
    return set(options) <= {"num_cpus"} and options.get("num_cpus", 1) <= 1


def runtime_env_key(node: GraphNode) -> str:
    """The runtime environment `node` runs in, as a comparable key ("" for none: local and built-in nodes)."""
    env = getattr(node.definition, "runtime_env", None)
    return json.dumps(env, sort_keys=True, default=str) if env else ""


def fusion_groups(graph: WorkflowGraph) -> tuple[tuple[str, ...], ...]:
    """The groups of connected fusable nodes of one runtime environment with equal frontiers, each in
    topological order (see the module docstring)."""
    envs = {node_id: runtime_env_key(node) for node_id, node in graph.nodes.items() if fusable(node)}
    groups: list[tuple[str, ...]] = []
    for env in sorted(set(envs.values())):
        groups += _groups_of(graph, {node_id: envs.get(node_id) == env for node_id in graph.nodes})
    return tuple(groups)


def _groups_of(graph: WorkflowGraph, can_fuse: dict[str, bool]) -> tuple[tuple[str, ...], ...]:
    """The groups of connected nodes marked in `can_fuse` with equal frontiers."""
    frontier: dict[str, frozenset[str]] = {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    empty: frozenset[str] = frozenset()
    for node_id in graph.nodes:
        ups = graph.upstream[node_id]
        if not ups:
            frontier[node_id] = empty
        elif len(ups) == 1:
            up = ups[0]
            frontier[node_id] = frontier[up] if can_fuse[up] else frozenset((up,))
        else:
            parts = [frontier[up] if can_fuse[up] else frozenset((up,)) for up in ups]
            frontier[node_id] = frozenset().union(*parts)
        if not can_fuse[node_id]:
            continue
        parent[node_id] = node_id
        for up in ups:
            if can_fuse[up] and frontier[up] == frontier[node_id]:
                a, b = find(up), find(node_id)
                if a != b:
                    parent[b] = a
    members: dict[str, list[str]] = {}
    for node_id in graph.nodes:  # graph order is topological, so members come out in order
        if node_id in parent:
            members.setdefault(find(node_id), []).append(node_id)
    return tuple(tuple(group) for group in members.values() if len(group) > 1)
