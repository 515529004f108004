"""Insert conversion nodes on an edge whose types need an explicit coercion (``Float -> Int``, ...).

Used by the type-check pass when the user allows conversions (compile option ``insert_conversions=True`` or
``"convert": true`` on the receiving node). Each explicit step of the coercion names its conversion node
(``builtin/to_int@1``); those nodes are chained between the source and the port, typed like any other node,
and reported with an RW203 note. The nodes get ids ``<node>__<port>__<conversion name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typesys
from engine.compile.diagnostics import abbreviate, error
from engine.workflow.bindings import Binding, NodeRef
from engine.workflow.graph import GraphNode
from nodes.ids import NodeId


def insert_conversions(
    state: Any,
    node: GraphNode,
    port: str,
    binding: Binding,
    coercion: Any,
    type_node: Callable[[Any, GraphNode], None],
) -> tuple[Binding, Any] | None:
    """Chain the conversion nodes of ``coercion`` in front of ``node.port``; returns the new binding of the
    port and the implicit coercion still needed after the last conversion, or None when it cannot be done.

    ``state`` is the type-check pass state (``graph``, ``catalog``, ``registry``, ``done``, ``diagnostics``);
    ``type_node(state, node)`` types a new node and records it in ``state.done``.
    """
    steps = [s for s in coercion.steps if s.node is not None]
    definitions = []
    for step in steps:
        try:
            definitions.append(state.catalog.get(step.node))
        except KeyError:
            return None
    current = binding
    inserted = []
    for definition in definitions:
        spec = definition.spec
        if not spec.inputs or not spec.outputs:
            return None
        conv_id = _fresh_id(state, f"{node.id}__{port}__{spec.name}")
        conversion = GraphNode(
            id=conv_id,
            type_id=spec.id,
            bindings={spec.inputs[0].name: current},
            spec=spec,
            definition=definition,
            inserted=True,
        )
        type_node(state, conversion)
        inserted.append(conv_id)
        current = NodeRef(conv_id, spec.outputs[0].name)
    last = state.done[inserted[-1]] if inserted else None
    if last is None or not isinstance(current, NodeRef):
        return None
    source = last.output_types[current.port]
    expected = node.input_types[port]
    remaining = None
    if not typesys.is_assignable(source, expected, registry=state.registry):
        remaining = typesys.find_coercion(source, expected, registry=state.registry)
        if remaining is None or remaining.kind == "explicit":
            return None
        if remaining.kind == "identity":
            remaining = None
    state.diagnostics.append(
        error(
            "RW203",
            f"inserted {', '.join(d.spec.id for d in definitions)} as node(s) {', '.join(inserted)} to convert "
            f"{abbreviate(coercion.source)} from {binding} to {abbreviate(coercion.target)} for input {port!r}",
            node=node.id,
            port=port,
            field=f"nodes.{node.id}.in.{port}",
        )
    )
    return current, remaining


def _fresh_id(state: Any, base: str) -> NodeId:
    candidate, n = base, 1
    while candidate in state.graph.nodes or candidate in state.done:
        n += 1
        candidate = f"{base}_{n}"
    return NodeId(candidate)
