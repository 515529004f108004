"""The dependency graph of a workflow document, and its critical path under given node durations.

Edges come from the node bindings of the JSON document (`"in": {"x": "a.out"}`, lists of such references);
`$inputs.*` and constants are no edges. Only the document's top level is read (a map node's inner workflow
runs inside it and counts as the map node's own time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def upstream(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """Node id -> the nodes it reads from, in binding order without repeats (nodes of the document only)."""
    nodes = dict(document.get("nodes") or {})
    edges: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        found: list[str] = []
        bindings = dict((node or {}).get("in") or {}) if isinstance(node, Mapping) else {}
        for binding in bindings.values():
            for item in binding if isinstance(binding, list) else [binding]:
                if isinstance(item, str) and not item.startswith("$"):
                    source = item.split(".", 1)[0]
                    if source in nodes and source not in found:
                        found.append(source)
        edges[node_id] = found
    return edges


def topological(edges: Mapping[str, list[str]]) -> list[str]:
    """The nodes in an order where every node comes after the nodes it reads from (ties by id); raises
    ValueError naming the nodes of a cycle."""
    remaining = {n: set(up) for n, up in edges.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(n for n, up in remaining.items() if not up)
        if not ready:
            raise ValueError(f"the workflow's nodes {sorted(remaining)} form a cycle")
        for n in ready:
            order.append(n)
            del remaining[n]
        for up in remaining.values():
            up.difference_update(ready)
    return order


@dataclass(frozen=True)
class CriticalPath:
    """The chain of nodes that sets a run's length: `nodes` in order, their durations and the total."""

    nodes: list[str]
    durations: dict[str, float]
    total_s: float

    def share(self, node: str) -> float:
        """The node's part of the path's length (0..1)."""
        return self.durations.get(node, 0.0) / self.total_s if self.total_s > 0 else 0.0


def critical_path(edges: Mapping[str, list[str]], durations: Mapping[str, float]) -> CriticalPath:
    """The longest chain through the graph when each node takes `durations[node]` seconds (0 when unknown)."""
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for node in topological(edges):
        ups = edges.get(node, [])
        prev = max(ups, key=lambda u: (finish[u], u), default=None)
        finish[node] = (finish[prev] if prev is not None else 0.0) + float(durations.get(node, 0.0))
        before[node] = prev
    if not finish:
        return CriticalPath([], {}, 0.0)
    end: str | None = max(finish, key=lambda n: (finish[n], n))
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = before[end]
    path.reverse()
    return CriticalPath(path, {n: float(durations.get(n, 0.0)) for n in path}, finish[path[-1]])
