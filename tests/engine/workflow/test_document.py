"""The canonical document model: parsing references, round trips, identifiers, the published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.workflow.document import (
    Constant,
    InputReference,
    PortReference,
    WorkflowDoc,
    parse_reference,
    workflow_json_schema,
)

DESIGN_EXAMPLE: dict[str, Any] = {
    "format": "rayweave.workflow/1",
    "name": "mean-of-csv",
    "inputs": {"path": {"type": "String"}},
    "nodes": {
        "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
        "mean": {
            "type": "builtin/column_mean@1",
            "in": {"table": "load.table"},
            "params": {"column": "x"},
            "retry": {"max_attempts": 3, "backoff": "exponential", "initial_s": 0.5},
            "resources": {"num_cpus": 1},
        },
    },
    "outputs": {"mean": "mean.value"},
}

REPO = Path(__file__).resolve().parents[3]


def test_design_example_round_trips_byte_for_byte() -> None:
    doc = WorkflowDoc.from_data(DESIGN_EXAMPLE)
    assert json.dumps(doc.to_data()) == json.dumps(DESIGN_EXAMPLE)


def test_references_are_parsed() -> None:
    doc = WorkflowDoc.from_data(DESIGN_EXAMPLE)
    assert doc.nodes["load"].in_["path"] == InputReference(name="path")
    assert doc.nodes["mean"].in_["table"] == PortReference(node="load", port="table")
    assert doc.outputs["mean"] == PortReference(node="mean", port="value")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("load.table", PortReference(node="load", port="table")),
        ("load", PortReference(node="load", port=None)),
        ("$inputs.path", InputReference(name="path")),
    ],
)
def test_parse_reference_forms(text: str, expected: object) -> None:
    assert parse_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["a.b.c", "$inputs", "$input.x", "1node.out", "a-b.c", ""])
def test_parse_reference_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a reference"):
        parse_reference(text)


def test_constants_keep_any_json_value_including_null() -> None:
    data = {
        "format": "rayweave.workflow/1",
        "name": "c",
        "nodes": {"a": {"type": "t/add@1", "in": {"a": {"value": None}, "b": {"value": [1, {"k": 2}]}}}},
        "outputs": {"o": "a"},
    }
    doc = WorkflowDoc.from_data(data)
    assert doc.nodes["a"].in_["a"] == Constant(value=None)
    assert doc.to_data()["nodes"] == data["nodes"]


def test_input_default_null_is_kept_but_absent_default_is_not_invented() -> None:
    data = {
        "format": "rayweave.workflow/1",
        "name": "d",
        "inputs": {"a": {"type": "Int | Null", "default": None}, "b": {"type": "Int"}},
        "nodes": {},
        "outputs": {},
    }
    doc = WorkflowDoc.from_data(data)
    assert doc.inputs["a"].has_default and not doc.inputs["b"].has_default
    assert doc.to_data()["inputs"] == data["inputs"]


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"retries": 3}, ("nodes", "n", "retries")),
        ({"retry": {"backoff": "linear"}}, ("nodes", "n", "retry", "backoff")),
        ({"retry": {"max_attempts": 0}}, ("nodes", "n", "retry", "max_attempts")),
        ({"timeout_s": 0}, ("nodes", "n", "timeout_s")),
        ({"type": "no-version"}, ("nodes", "n", "type")),
        ({"in": {"x": {"val": 1}}}, ("nodes", "n", "in", "x")),
    ],
)
def test_wrong_shapes_are_rejected_naming_the_field(patch: dict[str, Any], where: tuple[str, ...]) -> None:
    node = {"type": "t/inc@1", **patch}
    data = {"format": "rayweave.workflow/1", "name": "x", "nodes": {"n": node}, "outputs": {}}
    with pytest.raises(ValidationError) as info:
        WorkflowDoc.from_data(data)
    locs = [tuple(str(p) for p in e["loc"])[: len(where)] for e in info.value.errors()]
    assert where in locs


def test_node_ids_must_be_identifiers() -> None:
    data = {
        "format": "rayweave.workflow/1",
        "name": "x",
        "nodes": {"a.b": {"type": "t/inc@1"}},
        "outputs": {},
    }
    with pytest.raises(ValidationError):
        WorkflowDoc.from_data(data)


def test_other_formats_are_rejected() -> None:
    with pytest.raises(ValidationError):
        WorkflowDoc.from_data({**DESIGN_EXAMPLE, "format": "rayweave.workflow/2"})


def test_schema_accepts_the_design_example_and_rejects_typos() -> None:
    import jsonschema

    schema = workflow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(DESIGN_EXAMPLE)) == []
    bad = json.loads(json.dumps(DESIGN_EXAMPLE))
    bad["nodes"]["mean"]["retries"] = 3
    bad["nodes"]["bad.id"] = {"type": "a/b@1"}
    bad["nodes"]["load"]["in"]["path"] = "a.b.c"
    assert len(list(validator.iter_errors(bad))) >= 3


def test_checked_in_schema_is_current() -> None:
    from engine.compile.reference_docs import SCHEMA_PATH, schema_text

    checked_in = (REPO / SCHEMA_PATH).read_text(encoding="utf-8")
    assert checked_in == schema_text(), "run `python -m engine.compile.reference_docs` to regenerate"
