"""The immutable graph the compiler passes work on: nodes with bindings, edges and adjacency.

`build_graph(doc)` turns a `WorkflowDoc` into a `WorkflowGraph`; each compile pass takes a graph and returns a
new one (``graph.replace_nodes(...)``, ``dataclasses.replace``) - a graph is never changed after it is built.

A node's ``bindings`` use the plan's binding types (`NodeRef`, `InputRef`, `Const`). A reference to a node
alone (``"load"``, meaning its single output) is stored as ``NodeRef("load", SINGLE_OUTPUT)`` until the
resolve pass, which knows the node type, replaces it with the real port name.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from engine.workflow.bindings import Binding, Const, InputRef, ListBinding, NodeRef, Single, node_refs
from engine.workflow.document import (
    Constant,
    InputReference,
    ListReference,
    NodeDoc,
    PortReference,
    WorkflowDoc,
)
from nodes.ids import NodeId, NodeTypeId

if TYPE_CHECKING:
    from engine.compile.plan import Plan
    from nodes import NodeDefinition, NodeSpec
    from typesys import Coercion, Type

_N = TypeVar("_N")

SINGLE_OUTPUT = ""
"""The port of a `NodeRef` written as a node alone, before the resolve pass fills in the real port."""


@dataclass(frozen=True)
class GraphInput:
    """A declared workflow input; ``type`` is set by the type-check pass (None before, or if invalid)."""

    name: str
    type_text: str
    has_default: bool = False
    default: Any = None
    description: str | None = None
    type: Type | None = None


@dataclass(frozen=True)
class GraphNode:
    """A node of the graph. Fields after ``bindings`` are filled in by later passes.

    ``options`` is the document node (retry/timeout/resources/cache/convert overrides); ``inserted`` marks a
    conversion node the compiler added; ``subplan`` is the compiled sub-workflow of a map node.
    """

    id: NodeId
    type_id: NodeTypeId
    bindings: Mapping[str, Binding]
    params: Mapping[str, Any] = field(default_factory=dict)
    options: NodeDoc | None = None
    spec: NodeSpec | None = None
    definition: NodeDefinition | None = None
    input_types: Mapping[str, Type] = field(default_factory=dict)
    output_types: Mapping[str, Type] = field(default_factory=dict)
    coercions: Mapping[str, Coercion] = field(default_factory=dict)
    subplan: Plan | None = None
    inserted: bool = False

    def upstream_ids(self) -> list[str]:
        """Ids of the nodes this node reads from (without duplicates, in binding order)."""
        return list(dict.fromkeys(r.node for b in self.bindings.values() for r in node_refs(b)))


@dataclass(frozen=True)
class Edge:
    """Output ``source_port`` of ``source`` feeds input ``target_port`` of ``target``."""

    source: str
    source_port: str
    target: str
    target_port: str


@dataclass(frozen=True)
class WorkflowGraph:
    """A workflow as nodes (in topological order once the parse pass found no cycle), inputs and outputs.

    ``outputs`` maps workflow output names to bindings (`NodeRef` or `InputRef`).
    """

    name: str
    nodes: Mapping[str, GraphNode]
    inputs: Mapping[str, GraphInput] = field(default_factory=dict)
    outputs: Mapping[str, Binding] = field(default_factory=dict)

    @cached_property
    def edges(self) -> tuple[Edge, ...]:
        """Every node-to-node edge, in node order then binding order."""
        return tuple(
            Edge(r.node, r.port, node.id, port)
            for node in self.nodes.values()
            for port, b in node.bindings.items()
            for r in node_refs(b)
        )

    @cached_property
    def upstream(self) -> Mapping[str, tuple[str, ...]]:
        """Node id -> ids of the existing nodes it reads from."""
        return {
            node.id: tuple(u for u in node.upstream_ids() if u in self.nodes) for node in self.nodes.values()
        }

    @cached_property
    def downstream(self) -> Mapping[str, tuple[str, ...]]:
        """Node id -> ids of the nodes that read from it (in node order)."""
        result: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node_id, ups in self.upstream.items():
            for up in ups:
                result[up].append(node_id)
        return {k: tuple(v) for k, v in result.items()}

    def node(self, node_id: str) -> GraphNode:
        """The node ``node_id`` (KeyError naming the workflow otherwise)."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(f"workflow {self.name!r} has no node {node_id!r}") from None

    def replace_nodes(self, nodes: Iterable[GraphNode], **changes: Any) -> WorkflowGraph:
        """A copy with ``nodes`` (in this order) and any other fields changed."""
        return replace(self, nodes={n.id: n for n in nodes}, **changes)

    def topological_order(self) -> list[str] | None:
        """Node ids with every node after the nodes it reads from, or None when there is a cycle.

        Ties keep document order, so the order is stable for the same document.
        """
        indegree = {node_id: len(ups) for node_id, ups in self.upstream.items()}
        ready = deque(node_id for node_id, n in indegree.items() if n == 0)
        order: list[str] = []
        downstream = self.downstream
        while ready:
            node_id = ready.popleft()
            order.append(node_id)
            for down in downstream[node_id]:
                indegree[down] -= 1
                if indegree[down] == 0:
                    ready.append(down)
        return order if len(order) == len(self.nodes) else None

    def find_cycle(self) -> list[str]:
        """One cycle as a list of node ids (first repeated at the end), or [] when the graph is acyclic."""
        state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
        upstream = self.upstream
        for start in self.nodes:
            if start in state:
                continue
            path: list[str] = []
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                node_id, index = stack.pop()
                if index == 0:
                    state[node_id] = 1
                    path.append(node_id)
                ups = upstream[node_id]
                if index < len(ups):
                    stack.append((node_id, index + 1))
                    nxt = ups[index]
                    if state.get(nxt) == 1:
                        cycle = path[path.index(nxt) :]
                        # Walking upstream found the cycle backwards; report it in data-flow order.
                        cycle.reverse()
                        return [*cycle, cycle[0]]
                    if nxt not in state:
                        stack.append((nxt, 0))
                else:
                    state[node_id] = 2
                    path.pop()
        return []

    def ancestors(self, roots: Iterable[str]) -> set[str]:
        """The ids of ``roots`` and every node they (transitively) read from."""
        seen: set[str] = set()
        todo = [r for r in roots if r in self.nodes]
        while todo:
            node_id = todo.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            todo.extend(self.upstream[node_id])
        return seen


def evolve(node: _N, **changes: Any) -> _N:
    """A copy of a frozen node dataclass with ``changes`` (like `dataclasses.replace`, several times faster).

    Only for dataclasses without ``__post_init__`` or cached properties (`GraphNode`, `PlannedNode`): the
    compiler copies every node several times per pass and `replace` dominated compile time.
    """
    new = object.__new__(type(node))
    new.__dict__.update(node.__dict__)
    new.__dict__.update(changes)
    return new


def binding_from_doc(ref: PortReference | InputReference | Constant | ListReference) -> Binding:
    """The plan binding of a document reference (a node alone keeps the port `SINGLE_OUTPUT`)."""
    if isinstance(ref, ListReference):
        return ListBinding(tuple(_single_from_doc(item) for item in ref.items))
    return _single_from_doc(ref)


def _single_from_doc(ref: PortReference | InputReference | Constant) -> Single:
    if isinstance(ref, Constant):
        return Const(ref.value)
    if isinstance(ref, InputReference):
        return InputRef(ref.name)
    return NodeRef(NodeId(ref.node), SINGLE_OUTPUT if ref.port is None else ref.port)


def build_graph(doc: WorkflowDoc) -> WorkflowGraph:
    """The graph of a document, nodes in document order (the parse pass sorts them topologically)."""
    inputs = {
        name: GraphInput(
            name=name,
            type_text=spec.type,
            has_default=spec.has_default,
            default=spec.default,
            description=spec.description,
        )
        for name, spec in doc.inputs.items()
    }
    nodes = {
        node_id: GraphNode(
            id=NodeId(node_id),
            type_id=NodeTypeId(node.type),
            bindings={port: binding_from_doc(ref) for port, ref in node.in_.items()},
            params=dict(node.params),
            options=node,
        )
        for node_id, node in doc.nodes.items()
    }
    outputs = {name: binding_from_doc(ref) for name, ref in doc.outputs.items()}
    return WorkflowGraph(name=doc.name, nodes=nodes, inputs=inputs, outputs=outputs)
