"""The structural diff of workflow documents (pure; no database)."""

from __future__ import annotations

from typing import Any

from engine.store import Edge, diff_documents
from engine.store.diff import edges_of


def doc(**nodes: dict[str, Any]) -> dict[str, Any]:
    return {"format": "rayweave.workflow/1", "name": "w", "inputs": {"p": {"type": "Int"}}, "nodes": nodes}


def test_edges_come_from_references_not_constants() -> None:
    d = doc(
        a={"type": "t/a@1", "in": {"x": "$inputs.p", "k": {"value": "load.table"}}},
        b={"type": "t/b@1", "in": {"y": "a.out", "z": "a", "many": ["a.out", "c.v"]}},
    )
    assert edges_of(d) == {
        Edge("$inputs.p", "a", "x"),
        Edge("a.out", "b", "y"),
        Edge("a", "b", "z"),
        Edge("a.out", "b", "many"),
        Edge("c.v", "b", "many"),
    }


def test_removed_node_removes_its_edges_and_rewiring_shows_both_sides() -> None:
    old = doc(
        a={"type": "t/a@1"},
        b={"type": "t/b@1", "in": {"x": "a.out"}},
        c={"type": "t/c@1", "in": {"x": "b.out"}},
    )
    new = doc(a={"type": "t/a@1"}, c={"type": "t/c@1", "in": {"x": "a.out"}})
    diff = diff_documents(old, new)
    assert diff.nodes_removed == ("b",)
    assert diff.nodes_added == ()
    assert [(c.node, c.fields) for c in diff.nodes_changed] == [("c", ("in",))]
    assert set(diff.edges_removed) == {Edge("a.out", "b", "x"), Edge("b.out", "c", "x")}
    assert diff.edges_added == (Edge("a.out", "c", "x"),)


def test_policy_type_and_input_changes_are_reported() -> None:
    old = doc(a={"type": "t/a@1"})
    new = doc(a={"type": "t/a@2", "retry": {"max_attempts": 3}})
    new["inputs"] = {"p": {"type": "Float"}, "q": {"type": "Int"}}
    new["name"] = "w2"
    diff = diff_documents(old, new)
    assert diff.nodes_changed[0].fields == ("retry", "type")
    assert (diff.inputs_added, diff.inputs_changed, diff.inputs_removed) == (("q",), ("p",), ())
    assert diff.other_changed == ("name",)
    out = diff.to_json()
    assert out["nodes"]["changed"][0]["new"]["type"] == "t/a@2"
    assert out["inputs"]["added"] == ["q"]


def test_identical_documents_have_an_empty_diff() -> None:
    d = doc(a={"type": "t/a@1", "in": {"x": "$inputs.p"}})
    assert diff_documents(d, dict(d)).empty
    assert not diff_documents(d, doc()).empty
