"""Structural difference between two workflow documents (canonical JSON form).

Compares what a reviewer cares about: which nodes were added or removed, which nodes changed and in which fields
(type, params, wiring, policies), which edges appeared or disappeared, and how inputs and outputs changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INPUTS_PREFIX = "$inputs."


@dataclass(frozen=True, order=True)
class Edge:
    """A wire from `source` (`node.port`, `node`, or `$inputs.name`) into input `target_port` of `target`."""

    source: str
    target: str
    target_port: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}.{self.target_port}"


@dataclass(frozen=True)
class NodeChange:
    """A node present in both versions whose definition differs; `fields` are the top-level keys that changed."""

    node: str
    fields: tuple[str, ...]
    old: Mapping[str, Any]
    new: Mapping[str, Any]


@dataclass(frozen=True)
class WorkflowDiff:
    """The structural difference between an old and a new workflow document."""

    nodes_added: tuple[str, ...] = ()
    nodes_removed: tuple[str, ...] = ()
    nodes_changed: tuple[NodeChange, ...] = ()
    edges_added: tuple[Edge, ...] = ()
    edges_removed: tuple[Edge, ...] = ()
    inputs_added: tuple[str, ...] = ()
    inputs_removed: tuple[str, ...] = ()
    inputs_changed: tuple[str, ...] = ()
    outputs_added: tuple[str, ...] = ()
    outputs_removed: tuple[str, ...] = ()
    outputs_changed: tuple[str, ...] = ()
    other_changed: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when the two documents are structurally identical."""
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (for the HTTP API and `--json` output)."""
        return {
            "nodes": {
                "added": list(self.nodes_added),
                "removed": list(self.nodes_removed),
                "changed": [
                    {"node": c.node, "fields": list(c.fields), "old": dict(c.old), "new": dict(c.new)}
                    for c in self.nodes_changed
                ],
            },
            "edges": {
                "added": [str(e) for e in self.edges_added],
                "removed": [str(e) for e in self.edges_removed],
            },
            "inputs": {
                "added": list(self.inputs_added),
                "removed": list(self.inputs_removed),
                "changed": list(self.inputs_changed),
            },
            "outputs": {
                "added": list(self.outputs_added),
                "removed": list(self.outputs_removed),
                "changed": list(self.outputs_changed),
            },
            "other": list(self.other_changed),
        }


def edges_of(document: Mapping[str, Any]) -> frozenset[Edge]:
    """Every wire of a document: string references in each node's `in` (constants `{"value": ...}` are not)."""
    edges: set[Edge] = set()
    for node_id, node in _mapping(document.get("nodes")).items():
        for port, binding in _mapping(_mapping(node).get("in")).items():
            refs = binding if isinstance(binding, list) else [binding]
            edges.update(Edge(ref, str(node_id), str(port)) for ref in refs if isinstance(ref, str))
    return frozenset(edges)


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> WorkflowDiff:
    """Compare two workflow documents structurally."""
    old_nodes, new_nodes = _mapping(old.get("nodes")), _mapping(new.get("nodes"))
    changed = []
    for node_id in sorted(old_nodes.keys() & new_nodes.keys()):
        before, after = _mapping(old_nodes[node_id]), _mapping(new_nodes[node_id])
        fields = tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))
        if fields:
            changed.append(NodeChange(node_id, fields, before, after))
    old_edges, new_edges = edges_of(old), edges_of(new)
    in_added, in_removed, in_changed = _keyed(old.get("inputs"), new.get("inputs"))
    out_added, out_removed, out_changed = _keyed(old.get("outputs"), new.get("outputs"))
    structural = {"nodes", "inputs", "outputs"}
    other = tuple(sorted(k for k in (old.keys() | new.keys()) - structural if old.get(k) != new.get(k)))
    return WorkflowDiff(
        nodes_added=tuple(sorted(new_nodes.keys() - old_nodes.keys())),
        nodes_removed=tuple(sorted(old_nodes.keys() - new_nodes.keys())),
        nodes_changed=tuple(changed),
        edges_added=tuple(sorted(new_edges - old_edges)),
        edges_removed=tuple(sorted(old_edges - new_edges)),
        inputs_added=in_added,
        inputs_removed=in_removed,
        inputs_changed=in_changed,
        outputs_added=out_added,
        outputs_removed=out_removed,
        outputs_changed=out_changed,
        other_changed=other,
    )


def _keyed(old: Any, new: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    before, after = _mapping(old), _mapping(new)
    return (
        tuple(sorted(after.keys() - before.keys())),
        tuple(sorted(before.keys() - after.keys())),
        tuple(sorted(k for k in before.keys() & after.keys() if before[k] != after[k])),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
