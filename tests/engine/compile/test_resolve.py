"""Pass 2 alone: node types from the catalog, ports, params, options, single-output references."""

from __future__ import annotations

from typing import Any

from engine.compile.parse import parse
from engine.compile.resolve import resolve
from engine.workflow.bindings import NodeRef
from tests.engine.compile.nodes_for_tests import doc


def run(catalog: Any, nodes: dict[str, Any], outputs: dict[str, str]) -> Any:
    parsed = parse(doc(nodes, outputs))
    assert parsed.graph is not None
    return resolve(parsed.graph, catalog)


def test_specs_are_attached_and_single_outputs_resolved(catalog: Any) -> None:
    result = run(
        catalog,
        {"a": {"type": "t/inc@1", "in": {"x": {"value": 1}}}, "b": {"type": "t/inc@1", "in": {"x": "a"}}},
        {"o": "b"},
    )
    assert result.diagnostics == ()
    assert result.graph.nodes["b"].spec.id == "t/inc@1"
    assert result.graph.nodes["b"].bindings["x"] == NodeRef("a", "out")
    assert result.graph.outputs["o"] == NodeRef("b", "out")


def test_unknown_type_lists_close_matches_and_versions(catalog: Any) -> None:
    result = run(catalog, {"a": {"type": "t/icn@1"}, "b": {"type": "t/inc@7"}}, {"o": "a.out"})
    assert [d.code for d in result.diagnostics] == ["RW101", "RW101"]
    assert "t/inc@1" in (result.diagnostics[0].hint or "")
    assert "versions that exist" in (result.diagnostics[1].hint or "")


def test_unknown_input_port_and_missing_required_input(catalog: Any) -> None:
    result = run(catalog, {"a": {"type": "t/add@1", "in": {"aa": {"value": 1}}}}, {"o": "a.out"})
    found = {(d.code, d.port) for d in result.diagnostics}
    assert found == {("RW102", "aa"), ("RW106", "a")}
    hint = next(d.hint for d in result.diagnostics if d.code == "RW102")
    assert "did you mean 'a'" in (hint or "")


def test_optional_inputs_may_stay_unbound(catalog: Any) -> None:
    result = run(catalog, {"a": {"type": "t/add@1", "in": {"a": {"value": 1}}}}, {"o": "a.out"})
    assert result.diagnostics == ()


def test_unknown_output_port_of_a_reference(catalog: Any) -> None:
    nodes = {
        "a": {"type": "t/split@1", "in": {"x": {"value": 1}}},
        "b": {"type": "t/inc@1", "in": {"x": "a.mid"}},
    }
    result = run(catalog, nodes, {"o": "b.out", "p": "a.top"})
    assert [(d.code, d.node, d.field) for d in result.diagnostics] == [
        ("RW102", "b", "nodes.b.in.x"),
        ("RW107", None, "outputs.p"),
    ]


def test_node_alone_with_several_outputs_is_ambiguous(catalog: Any) -> None:
    nodes = {
        "a": {"type": "t/split@1", "in": {"x": {"value": 1}}},
        "b": {"type": "t/inc@1", "in": {"x": "a"}},
    }
    result = run(catalog, nodes, {"o": "b.out"})
    assert [d.code for d in result.diagnostics] == ["RW113"]
    assert "low" in (result.diagnostics[0].hint or "")


def test_params_unknown_and_missing(catalog: Any) -> None:
    nodes = {"a": {"type": "t/scale@1", "in": {"x": {"value": 1}}, "params": {"factr": 2}}}
    result = run(catalog, nodes, {"o": "a.out"})
    assert sorted(d.code for d in result.diagnostics) == ["RW108", "RW110"]


def test_invalid_merged_retry_is_rw117(catalog: Any) -> None:
    nodes = {"a": {"type": "t/inc@1", "in": {"x": {"value": 1}}, "retry": {"initial_s": 50}}}
    result = run(catalog, nodes, {"o": "a.out"})
    assert [(d.code, d.field) for d in result.diagnostics] == [("RW117", "nodes.a.retry")]
