"""The layout of a workflow in a Yjs document (`serve.collab.document`): round trips, numbers, layout fields,
and merging a stored version's changes into a document edited meanwhile."""

from __future__ import annotations

import copy
from typing import Any

from pycrdt import Doc, Map

from serve.collab.document import apply_change, base_version, load_workflow, roots, to_workflow

RICH: dict[str, Any] = {
    "format": "rayweave.workflow/1",
    "name": "rich",
    "description": "every kind of field",
    "inputs": {
        "xs": {"type": "List[Int]", "default": [1, 2], "description": "numbers"},
        "n": {"type": "Int"},
    },
    "nodes": {
        "first": {
            "type": "builtin/add@1",
            "in": {"a": "$inputs.n", "b": {"value": 2.5}},
            "retry": {"max_attempts": 3, "backoff": "exponential", "initial_s": 0.5},
            "timeout_s": 10,
            "resources": {"num_cpus": 1},
            "cache": False,
            "description": "adds",
        },
        "many": {
            "type": "builtin/sum@1",
            "in": {"xs": ["first", "first.out", {"value": 3}]},
            "params": {"k": 7},
        },
    },
    "outputs": {"total": "many", "first": "first.out"},
}


def _doc(document: dict[str, Any], version: int = 1) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    load_workflow(doc, document, version=version)
    return doc


def _synced_copy(doc: Doc[Any]) -> Doc[Any]:
    other: Doc[Any] = Doc()
    other.apply_update(doc.get_update())
    return other


def test_a_document_round_trips_through_yjs_and_another_replica() -> None:
    doc = _doc(RICH, version=4)
    assert to_workflow(doc) == RICH
    assert to_workflow(_synced_copy(doc)) == RICH
    assert base_version(doc) == 4
    # Numbers: whole ones come back as ints (Yjs stores doubles), others stay floats.
    back = to_workflow(doc)
    assert isinstance(back["nodes"]["first"]["timeout_s"], int)
    assert isinstance(back["nodes"]["first"]["in"]["b"]["value"], float)


def test_independent_fields_are_maps_and_positions_stay_out_of_the_workflow() -> None:
    doc = _doc(RICH)
    node = roots(doc)["nodes"]["many"]
    assert all(isinstance(node[key], Map) for key in ("in", "params"))
    node["position"] = Map({"x": 12, "y": 30})
    assert "position" not in to_workflow(doc)["nodes"]["many"]
    assert to_workflow(doc) == RICH


def test_a_stored_change_merges_with_edits_made_meanwhile() -> None:
    doc = _doc(RICH)
    # Edits in the shared document since version 1:
    nodes = roots(doc)["nodes"]
    nodes["many"]["params"]["mine"] = "kept"
    nodes["first"]["in"]["b"] = {"value": 9}
    nodes["extra"] = Map({"type": "builtin/add@1", "in": Map({"a": "first", "b": "first"}), "params": Map()})
    # Version 2, saved through the API from version 1: renamed, `k` changed, an output removed, a node added.
    new = copy.deepcopy(RICH)
    new["name"] = "renamed"
    new["nodes"]["many"]["params"]["k"] = 8
    del new["outputs"]["first"]
    new["nodes"]["late"] = {"type": "builtin/add@1", "in": {"a": "many", "b": "many"}}
    apply_change(doc, RICH, new, version=2)

    merged = to_workflow(doc)
    assert merged["name"] == "renamed" and base_version(doc) == 2
    assert merged["nodes"]["many"]["params"] == {"k": 8, "mine": "kept"}
    assert merged["nodes"]["first"]["in"]["b"] == {"value": 9}  # the version did not touch it
    assert set(merged["nodes"]) == {"first", "many", "extra", "late"}
    assert merged["outputs"] == {"total": "many"}


def test_where_both_changed_a_field_the_stored_version_wins() -> None:
    doc = _doc(RICH)
    roots(doc)["nodes"]["many"]["params"]["k"] = 100
    roots(doc)["nodes"]["gone"] = Map({"type": "builtin/add@1"})
    new = copy.deepcopy(RICH)
    new["nodes"]["many"]["params"]["k"] = 8
    del new["nodes"]["first"]
    apply_change(doc, RICH, new, version=2)
    merged = to_workflow(doc)
    assert merged["nodes"]["many"]["params"]["k"] == 8
    assert "first" not in merged["nodes"] and "gone" in merged["nodes"]
