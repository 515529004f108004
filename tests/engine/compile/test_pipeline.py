"""The whole compiler: optimizing never changes results, validate() reports without raising."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.compile import compile_workflow, validate
from engine.errors import WorkflowValidationError
from tests.engine.compile.evaluate import evaluate
from tests.engine.compile.nodes_for_tests import doc


def mixed_workflow() -> dict[str, Any]:
    nodes: dict[str, Any] = {
        "src": {"type": "t/slow@1", "in": {"x": "$inputs.n"}},
        "dup": {"type": "t/slow@1", "in": {"x": "$inputs.n"}},
        "sp": {"type": "t/split@1", "in": {"x": "src.out"}},
    }
    for i in range(20):
        upstream = "sp.low" if i % 2 else "dup.out"
        nodes[f"c{i}"] = {"type": "t/add@1", "in": {"a": upstream, "b": {"value": i}}}
        if i % 5 == 0:
            nodes[f"e{i}"] = {"type": "t/slow@1", "in": {"x": f"c{i}.out"}}
    nodes["all"] = {
        "type": "t/collect@1",
        "in": {"a": "c1.out", "b": "e5.out", "c": "c19.out", "d": "sp.high"},
    }
    nodes["sum"] = {"type": "t/total@1", "in": {"xs": "all.out"}}
    nodes["half"] = {"type": "t/half@1", "in": {"x": "sum.out"}}
    nodes["first"] = {"type": "t/first@1", "in": {"xs": "all.out"}}
    outputs = {"sum": "sum.out", "half": "half.out", "first": "first.out", "e10": "e10.out", "e15": "e15"}
    return doc(nodes, outputs, {"n": {"type": "Int", "default": 3}})


def test_optimizing_never_changes_results(catalog: Any) -> None:
    d = mixed_workflow()
    plain = compile_workflow(d, catalog, optimize=False)
    optimized = compile_workflow(d, catalog, optimize=True)
    assert len(optimized.nodes) < len(plain.nodes)
    assert any(node.is_fused for node in optimized.nodes)
    assert optimized.aliases == {"dup": "src"} and plain.aliases == {}
    for n in (0, 3, 10):
        assert evaluate(optimized, {"n": n}) == evaluate(plain, {"n": n})
    assert evaluate(plain, {"n": 3})["half"] == evaluate(plain, {"n": 3})["sum"] / 2


def test_validate_returns_warnings_for_clean_workflows(catalog: Any) -> None:
    d = mixed_workflow()
    found = validate(d, catalog)
    assert [x.code for x in found if x.severity == "error"] == []
    unused = {x.node for x in found if x.code == "RW201"}
    assert {"e0", "c0", "c2"} <= unused
    assert unused.isdisjoint({"src", "dup", "sp", "c1", "e5", "c19", "all", "sum", "half", "first"})


def test_inserted_conversions_run(catalog: Any) -> None:
    d = doc(
        {"h": {"type": "t/half@1", "in": {"x": "$inputs.x"}}, "i": {"type": "t/inc@1", "in": {"x": "h.out"}}},
        {"o": "i.out"},
        {"x": {"type": "Float"}},
    )
    plan = compile_workflow(d, catalog, insert_conversions=True)
    assert evaluate(plan, {"x": 9.0}) == {"o": 5}


def test_text_and_files_are_accepted(catalog: Any, tmp_path: Path) -> None:
    d = doc({"a": {"type": "t/inc@1", "in": {"x": {"value": 1}}}}, {"o": "a.out"})
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(d))
    assert compile_workflow(path, catalog).node_ids() == ("a",)
    assert compile_workflow(json.dumps(d), catalog).node_ids() == ("a",)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ')
    assert [x.code for x in validate(broken, catalog)] == ["RW001"]
    with pytest.raises(WorkflowValidationError):
        compile_workflow(broken, catalog)
