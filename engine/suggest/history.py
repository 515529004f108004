"""Co-occurrence learned from workflow documents: which node type follows which output port, and which node
types appear together in one workflow.

Counts come from the edges of the documents given (a stored workflow's latest version, say): an edge
`A.port -> B.port` counts once per workflow, however often it repeats there, so one big generated workflow does
not outweigh many small ones. `map` sub-workflows count as workflows of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: (source node type, source port, target node type, target port)
EdgeKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class WorkflowEdges:
    """What one workflow document contributes: its node types and its typed edges (each once)."""

    types: frozenset[str]
    edges: frozenset[EdgeKey]


def _ref_node_port(ref: str, single_output: Mapping[str, str]) -> tuple[str, str] | None:
    """`node.port` or `node` (its single output) as (node, port); None for `$inputs.x` and the like."""
    if not isinstance(ref, str) or ref.startswith("$"):
        return None
    node, _, port = ref.partition(".")
    if not port:
        port = single_output.get(node, "out")
    return node, port


def _refs(binding: Any) -> Iterable[str]:
    if isinstance(binding, str):
        yield binding
    elif isinstance(binding, list):
        for item in binding:
            if isinstance(item, str):
                yield item


def workflow_edges(
    document: Mapping[str, Any], single_output: Mapping[str, str] | None = None
) -> list[WorkflowEdges]:
    """The node types and edges of `document` and of each `map` sub-workflow in its params (documents that
    are not workflows give nothing). `single_output` names the only output port of a node type, for
    references written `node` alone (default `out`)."""
    found: list[WorkflowEdges] = []
    todo: list[Any] = [document]
    outputs_of = dict(single_output or {})
    while todo:
        doc = todo.pop()
        nodes = doc.get("nodes") if isinstance(doc, Mapping) else None
        if not isinstance(nodes, Mapping):
            continue
        type_of = {
            node_id: str(node["type"])
            for node_id, node in nodes.items()
            if isinstance(node, Mapping) and isinstance(node.get("type"), str)
        }
        single = {node_id: outputs_of[t] for node_id, t in type_of.items() if t in outputs_of}
        edges: set[EdgeKey] = set()
        for node_id, node in nodes.items():
            if node_id not in type_of:
                continue
            bindings = node.get("in")
            for port, binding in bindings.items() if isinstance(bindings, Mapping) else ():
                for ref in _refs(binding):
                    source = _ref_node_port(ref, single)
                    if source is not None and source[0] in type_of:
                        edges.add((type_of[source[0]], source[1], type_of[node_id], str(port)))
            params = node.get("params")
            if isinstance(params, Mapping) and isinstance(params.get("workflow"), Mapping):
                todo.append(params["workflow"])
        if type_of:
            found.append(WorkflowEdges(frozenset(type_of.values()), frozenset(edges)))
    return found


@dataclass
class History:
    """Counts over a set of workflows: edges by their ends, node types by workflow, and pairs of node types
    that appear in one workflow. Empty when nothing was learned; the ranking then falls back on its prior."""

    workflows: int = 0
    edges: Counter[EdgeKey] = field(default_factory=Counter)
    #: (source type, source port, target type) -> count, and the reverse for the input side
    out_to_type: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    out_total: Counter[tuple[str, str]] = field(default_factory=Counter)
    in_from_type: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    in_total: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (source type, target type) -> count, either direction of an edge, for the back-off without ports
    type_pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    type_out_total: Counter[str] = field(default_factory=Counter)
    type_in_total: Counter[str] = field(default_factory=Counter)
    #: workflows in which a node type appears, and in which two node types appear together
    type_workflows: Counter[str] = field(default_factory=Counter)
    together: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: node types at the target and source end of edges (popularity)
    targets: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_documents(
        cls, documents: Iterable[Mapping[str, Any]], single_output: Mapping[str, str] | None = None
    ) -> History:
        """Counts over `documents` (workflow documents in their JSON form)."""
        history = cls()
        for document in documents:
            for wf in workflow_edges(document, single_output):
                history.add(wf)
        return history

    def add(self, wf: WorkflowEdges, count: int = 1) -> None:
        """Count one workflow's types and edges (`count=-1` takes a counted workflow out again, which is how
        the leave-one-out evaluation hides a workflow from what was learned)."""
        self.workflows += count
        for t in wf.types:
            self.type_workflows[t] += count
        for a in wf.types:
            for b in wf.types:
                if a != b:
                    self.together[(a, b)] += count
        for edge in wf.edges:
            source, port, target, target_port = edge
            self.edges[edge] += count
            self.out_to_type[(source, port, target)] += count
            self.out_total[(source, port)] += count
            self.in_from_type[(target, target_port, source)] += count
            self.in_total[(target, target_port)] += count
            self.type_pairs[(source, target)] += count
            self.type_out_total[source] += count
            self.type_in_total[target] += count
            self.targets[target] += count
            self.sources[source] += count

    def to_json(self) -> dict[str, Any]:
        """What was learned, in figures."""
        return {"workflows": self.workflows, "edges": sum(self.edges.values()), "edge_kinds": len(self.edges)}
