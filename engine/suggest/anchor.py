"""The port a suggestion starts from: a node of a (partial) workflow, one of its ports, and that port's type.

The type is the one the compiler infers for the port in this workflow (type variables solved from what the
node is bound to, `engine.compile.typecheck`), or the declared type when the workflow does not type-check that
far (a partial workflow often does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import typesys
from engine.suggest.errors import SuggestError, UnknownNodeError, UnknownPortError
from nodes import Catalog
from nodes.spec import NodeSpec

Side = Literal["output", "input"]


@dataclass(frozen=True)
class Anchor:
    """The selected port: node id, node type, port name, side, and the port's type in this workflow."""

    node: str
    spec: NodeSpec
    port: str
    side: Side
    type: typesys.Type

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "node": self.node,
            "node_type": str(self.spec.id),
            "port": self.port,
            "side": self.side,
            "type": str(self.type),
        }


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "") if names else "none"


def find_anchor(
    catalog: Catalog, document: Mapping[str, Any], node: str, port: str | None, side: Side, *, name: str = ""
) -> Anchor:
    """The anchor `node`.`port` on `side` of `document` (`port` may be left out when the node has one port on
    that side). Raises `UnknownNodeError`/`UnknownPortError`/`SuggestError` naming the workflow, node and port."""
    from nodes.errors import UnknownNodeTypeError

    label = name or str(document.get("name") or "<unnamed>")
    nodes = document.get("nodes")
    nodes = nodes if isinstance(nodes, Mapping) else {}
    entry = nodes.get(node)
    if not isinstance(entry, Mapping):
        raise UnknownNodeError(
            f"workflow {label!r} has no node {node!r}; its nodes are {_listed(sorted(map(str, nodes)))}",
            field="node",
        )
    type_id = entry.get("type")
    try:
        spec = catalog.get(str(type_id)).spec
    except UnknownNodeTypeError as exc:
        raise SuggestError(
            f"node {node!r} of workflow {label!r} has node type {type_id!r}, which is not in the catalog: "
            f"{str(exc).strip(chr(34) + chr(39))}",
            field="node",
        ) from None
    ports = spec.outputs if side == "output" else spec.inputs
    names = [p.name for p in ports]
    if port is None:
        if len(names) != 1:
            raise SuggestError(
                f"node {node!r} ({spec.id}) has {len(names)} {side} ports; name one with port: {_listed(names)}",
                field="port",
            )
        port = names[0]
    if port not in names:
        raise UnknownPortError(
            f"node {node!r} ({spec.id}) of workflow {label!r} has no {side} port {port!r}; its {side} ports are "
            f"{_listed(names)}",
            field="port",
        )
    declared = next(p.type for p in ports if p.name == port)
    return Anchor(node, spec, port, side, _inferred(catalog, document, node, port, side) or declared)


def _inferred(catalog: Catalog, document: Mapping[str, Any], node: str, port: str, side: Side) -> Any:
    """The port's type after the compiler's type inference, or None when the document does not get that far."""
    from engine.compile.parse import parse
    from engine.compile.resolve import resolve
    from engine.compile.typecheck import typecheck

    try:
        parsed = parse(dict(document))
        if parsed.graph is None:
            return None
        resolved = resolve(parsed.graph, catalog)
        if resolved.graph is None:
            return None
        typed = typecheck(
            resolved.graph, catalog, registry=catalog.registry or typesys.TypeRegistry.default()
        )
    except Exception:  # a partial workflow may trip a pass anywhere; the declared type is the answer then
        return None
    graph_node = typed.graph.nodes.get(node) if typed.graph is not None else None
    if graph_node is None:
        return None
    types = graph_node.output_types if side == "output" else graph_node.input_types
    return types.get(port)
