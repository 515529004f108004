"""Pass 1 alone: references, cycles, outputs, and raw data that is not a document."""

from __future__ import annotations

from engine.compile.parse import parse
from engine.workflow.bindings import Const, InputRef, NodeRef
from tests.engine.compile.nodes_for_tests import doc


def codes(result: object) -> list[str]:
    return [d.code for d in result.diagnostics]  # type: ignore[attr-defined]


def test_nodes_come_out_in_topological_order() -> None:
    d = doc(
        {
            "c": {"type": "t/add@1", "in": {"a": "a.out", "b": "b.out"}},
            "b": {"type": "t/inc@1", "in": {"x": "a"}},
            "a": {"type": "t/inc@1", "in": {"x": "$inputs.n"}},
        },
        {"o": "c.out"},
        {"n": {"type": "Int"}},
    )
    result = parse(d)
    assert codes(result) == []
    assert result.graph is not None
    assert list(result.graph.nodes) == ["a", "b", "c"]
    assert result.graph.nodes["c"].bindings == {"a": NodeRef("a", "out"), "b": NodeRef("b", "out")}
    assert result.graph.nodes["a"].bindings == {"x": InputRef("n")}
    assert result.graph.downstream["a"] == ("b", "c")


def test_constants_become_const_bindings() -> None:
    result = parse(doc({"a": {"type": "t/inc@1", "in": {"x": {"value": 4}}}}, {"o": "a.out"}))
    assert result.graph is not None
    assert result.graph.nodes["a"].bindings["x"] == Const(4)


def test_unknown_node_and_input_references() -> None:
    d = doc(
        {"a": {"type": "t/add@1", "in": {"a": "b.out", "b": "$inputs.missing"}}},
        {"o": "a.out", "p": "zzz.out", "q": "$inputs.nope"},
    )
    result = parse(d)
    assert codes(result) == ["RW111", "RW112", "RW107", "RW107"]
    first = result.diagnostics[0]
    assert (first.node, first.port, first.field) == ("a", "a", "nodes.a.in.a")


def test_cycle_is_reported_with_its_path() -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": "c.out"}},
            "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
            "c": {"type": "t/inc@1", "in": {"x": "b.out"}},
            "d": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
        },
        {"o": "d.out"},
    )
    result = parse(d)
    assert codes(result) == ["RW105"]
    message = result.diagnostics[0].message
    assert all(n in message for n in ("a", "b", "c")) and "d" not in message.split(":")[1]


def test_self_loop_is_a_cycle() -> None:
    result = parse(doc({"a": {"type": "t/inc@1", "in": {"x": "a.out"}}}, {"o": "a.out"}))
    assert codes(result) == ["RW105"]


def test_no_outputs_is_a_warning() -> None:
    result = parse(doc({}, {}))
    assert [(d.code, d.severity) for d in result.diagnostics] == [("RW202", "warning")]


def test_raw_data_of_the_wrong_shape_gives_rw002_with_the_path() -> None:
    result = parse({"format": "rayweave.workflow/1", "name": "x", "nodes": {"a": {"typ": "t/inc@1"}}})
    assert result.graph is None
    assert {d.code for d in result.diagnostics} == {"RW002"}
    assert {d.field for d in result.diagnostics} == {"nodes.a.typ", "nodes.a.type"}
