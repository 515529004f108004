"""The `needless_edge` insight: an edge into an input port the node's body never reads (`engine.insights.unread`)
makes the node wait for its upstream node for nothing. How much sooner each run would end without it is
replayed from the run's recorded timeline.

The replay keeps what each execution recorded: its span (first start to last finish) and the gap between the
moment it was ready (its last upstream node finished; the run's start for a first node) and its start, which is
the engine's dispatch time. Without the edge, a node starts its gap after the last of its *remaining* upstream
nodes finishes (a node left without upstream nodes: as soon as the run's first nodes started). Nodes no workflow
output needs any more once the edge is gone are dropped, as the compiler drops them (RW201). The prediction
assumes the nodes that would then overlap have room to run at once (enough CPUs, or I/O-bound nodes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.analytics.dag import topological
from engine.insights.unread import UnreadPort


class _Timed(Protocol):
    start: float | None
    end: float | None


class _TimedRun(Protocol):
    id: str
    duration: float

    @property
    def nodes(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class NeedlessEdge:
    """An input binding of `node` at `port` to `sources`' outputs that the node's body never reads."""

    node: str
    port: str
    binding: Any
    sources: list[str]
    optional: bool


def needless_bindings(
    nodes: Mapping[str, Any], unread: Mapping[str, Sequence[UnreadPort]]
) -> Iterator[NeedlessEdge]:
    """The bindings of `nodes` (a document's) to other nodes' outputs at ports their type never reads."""
    for node_id, spec in nodes.items():
        if not isinstance(spec, Mapping):
            continue
        ports = {p.name: p for p in unread.get(str(spec.get("type", "")), ())}
        for port, binding in dict(spec.get("in") or {}).items():
            if port not in ports:
                continue
            items = binding if isinstance(binding, list) else [binding]
            sources = [
                item.split(".", 1)[0]
                for item in items
                if isinstance(item, str) and not item.startswith("$") and item.split(".", 1)[0] in nodes
            ]
            if sources:
                yield NeedlessEdge(node_id, port, binding, sorted(set(sources)), ports[port].optional)


def without_binding(document: Mapping[str, Any], node: str, port: str) -> dict[str, Any]:
    """A copy of `document` where `node`'s input `port` is unbound (the rest shared, not copied)."""
    nodes = dict(document.get("nodes") or {})
    spec = dict(nodes[node])
    spec["in"] = {k: v for k, v in dict(spec.get("in") or {}).items() if k != port}
    nodes[node] = spec
    return {**document, "nodes": nodes}


def ancestors(edges: Mapping[str, list[str]], node: str) -> set[str]:
    """`node` and every node it reads from, directly or not."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(edges.get(current, []))
    return found


def needed(document: Mapping[str, Any], edges: Mapping[str, list[str]]) -> set[str]:
    """The nodes the workflow's declared outputs need (all nodes when it declares none)."""
    outputs = dict(document.get("outputs") or {})
    if not outputs:
        return set(edges)
    stack: list[str] = []
    for binding in outputs.values():
        for item in binding if isinstance(binding, list) else [binding]:
            if isinstance(item, str) and not item.startswith("$"):
                stack.append(item.split(".", 1)[0])
    found: set[str] = set()
    while stack:
        node = stack.pop()
        if node in found or node not in edges:
            continue
        found.add(node)
        stack.extend(edges[node])
    return found


@dataclass(frozen=True)
class Replay:
    """One run replayed without an edge: how much sooner it ends, and how much sooner `node` finishes."""

    run_saving_s: float
    node_saving_s: float | None


def replay(
    run: _TimedRun,
    before: Mapping[str, list[str]],
    after: Mapping[str, list[str]],
    keep_before: set[str],
    keep_after: set[str],
    node: str,
) -> Replay | None:
    """`run` replayed under the edges `after` instead of `before` (each keeping only the nodes `keep_*`); None
    when an execution it needs lacks its start or finish (nothing is claimed for that run)."""
    timed: dict[str, _Timed] = {
        n: e for n, e in run.nodes.items() if n in keep_before and e.start is not None and e.end is not None
    }
    if any(n not in timed for n in keep_before if n in run.nodes) or not timed:
        return None
    order = [n for n in topological(before) if n in timed]
    recorded: dict[str, float] = {n: float(timed[n].end or 0.0) for n in order}
    gaps: dict[str, float] = {}
    for n in order:
        ready = max((recorded[u] for u in before.get(n, []) if u in timed), default=0.0)
        gaps[n] = max(float(timed[n].start or 0.0) - ready, 0.0)
    roots = [gaps[n] for n in order if not any(u in timed for u in before.get(n, []))]
    first_gap = min(roots, default=0.0)

    def finish(edges: Mapping[str, list[str]], keep: set[str]) -> dict[str, float]:
        done: dict[str, float] = {}
        for n in order:
            if n not in keep:
                continue
            ups = [u for u in edges.get(n, []) if u in done]
            had = [u for u in before.get(n, []) if u in timed]
            gap = gaps[n] if ups or not had else first_gap
            span = float(timed[n].end or 0.0) - float(timed[n].start or 0.0)
            done[n] = max((done[u] for u in ups), default=0.0) + gap + max(span, 0.0)
        return done

    old, new = finish(before, keep_before), finish(after, keep_after)
    saving = max(max(old.values(), default=0.0) - max(new.values(), default=0.0), 0.0)
    node_saving = old[node] - new[node] if node in old and node in new else None
    return Replay(saving, node_saving)
