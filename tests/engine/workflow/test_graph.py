"""The immutable workflow graph: edges, adjacency, order, cycles, ancestors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from engine.workflow.bindings import Const, InputRef, NodeRef
from engine.workflow.document import WorkflowDoc
from engine.workflow.graph import SINGLE_OUTPUT, Edge, WorkflowGraph, build_graph, evolve


def graph_of(nodes: dict[str, Any], outputs: dict[str, str] | None = None) -> WorkflowGraph:
    return build_graph(
        WorkflowDoc.from_data(
            {
                "format": "rayweave.workflow/1",
                "name": "g",
                "inputs": {"n": {"type": "Int", "default": 1}},
                "nodes": nodes,
                "outputs": outputs or {},
            }
        )
    )


DIAMOND: dict[str, Any] = {
    "d": {"type": "t/add@1", "in": {"a": "b.out", "b": "c"}},
    "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
    "c": {"type": "t/inc@1", "in": {"x": "a.out"}},
    "a": {"type": "t/inc@1", "in": {"x": "$inputs.n"}},
    "k": {"type": "t/inc@1", "in": {"x": {"value": 3}}},
}


def test_bindings_edges_and_adjacency() -> None:
    g = graph_of(DIAMOND, {"o": "d.out"})
    assert g.nodes["d"].bindings == {"a": NodeRef("b", "out"), "b": NodeRef("c", SINGLE_OUTPUT)}
    assert g.nodes["a"].bindings == {"x": InputRef("n")}
    assert g.nodes["k"].bindings == {"x": Const(3)}
    assert Edge("a", "out", "b", "x") in g.edges and len(g.edges) == 4
    assert g.upstream["d"] == ("b", "c") and g.downstream["a"] == ("b", "c")
    assert g.inputs["n"].has_default and g.inputs["n"].default == 1
    assert g.outputs["o"] == NodeRef("d", "out")


def test_topological_order_is_stable_and_respects_edges() -> None:
    g = graph_of(DIAMOND)
    order = g.topological_order()
    assert order is not None
    assert order.index("a") < order.index("b") < order.index("d") and order.index("c") < order.index("d")
    assert order == graph_of(DIAMOND).topological_order()
    assert g.ancestors(["d"]) == {"a", "b", "c", "d"}


def test_cycles_are_found() -> None:
    g = graph_of(
        {"a": {"type": "t/inc@1", "in": {"x": "b.out"}}, "b": {"type": "t/inc@1", "in": {"x": "a.out"}}}
    )
    assert g.topological_order() is None
    cycle = g.find_cycle()
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b"}
    assert graph_of(DIAMOND).find_cycle() == []


def test_graphs_and_nodes_are_immutable() -> None:
    g = graph_of(DIAMOND)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.nodes["a"].type_id = "x"  # type: ignore[misc]
    changed = evolve(g.nodes["a"], type_id="t/other@1")
    assert changed.type_id == "t/other@1" and g.nodes["a"].type_id == "t/inc@1"
    smaller = g.replace_nodes([g.nodes["a"]])
    assert list(smaller.nodes) == ["a"] and len(g.nodes) == 5
