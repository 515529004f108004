"""Pass 4 alone: keeping only what the requested outputs need."""

from __future__ import annotations

from typing import Any

from engine.compile.parse import parse
from engine.compile.prune import prune
from tests.engine.compile.nodes_for_tests import doc

NODES = {
    "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
    "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
    "c": {"type": "t/inc@1", "in": {"x": "a.out"}},
    "unused": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
}


def graph() -> Any:
    parsed = parse(doc(NODES, {"b": "b.out", "c": "c.out"}))
    assert parsed.graph is not None
    return parsed.graph


def test_requested_outputs_keep_only_their_ancestors() -> None:
    result = prune(graph(), ["b"])
    assert result.graph is not None
    assert list(result.graph.nodes) == ["a", "b"]
    assert list(result.graph.outputs) == ["b"]
    assert result.diagnostics == ()


def test_all_outputs_by_default_with_a_warning_for_unused_nodes() -> None:
    result = prune(graph())
    assert result.graph is not None
    assert list(result.graph.nodes) == ["a", "b", "c"]
    assert [(d.code, d.severity, d.node) for d in result.diagnostics] == [("RW201", "warning", "unused")]


def test_unknown_requested_output_is_rw107() -> None:
    result = prune(graph(), ["b", "zz"])
    assert [d.code for d in result.diagnostics] == ["RW107"]
    assert "b, c" in (result.diagnostics[0].hint or "")


def test_targets_keep_the_target_and_its_ancestors_with_its_ports_as_outputs(catalog: Any) -> None:
    from engine.compile import compile_workflow

    plan = compile_workflow(doc(NODES, {"b": "b.out"}), catalog, targets=["c"], optimize=False)
    assert plan.node_ids() == ("a", "c")
    assert list(plan.outputs) == ["c__out"]


def test_an_unknown_target_is_rw107_naming_it(catalog: Any) -> None:
    from engine.compile import validate

    found = [d for d in validate(doc(NODES, {"b": "b.out"}), catalog, targets=["zz"]) if d.code == "RW107"]
    assert len(found) == 1 and "'zz'" in found[0].message and found[0].field == "targets"
    assert "a, b, c, unused" in (found[0].hint or "")
