"""Loading and saving JSON/YAML: syntax errors with line and column, shape errors with the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import WorkflowLoadError
from engine.workflow.loader import (
    dump_workflow,
    load_workflow,
    load_workflow_file,
    load_workflow_text,
    save_workflow,
)
from tests.engine.workflow.test_document import DESIGN_EXAMPLE


def test_json_syntax_error_has_line_and_column() -> None:
    text = '{\n  "format": "rayweave.workflow/1",\n  "name": "x",,\n}'
    with pytest.raises(WorkflowLoadError) as info:
        load_workflow_text(text)
    assert (info.value.line, info.value.column) == (3, 15)
    assert "invalid JSON" in str(info.value) and "<text>:3:15" in str(info.value)


def test_yaml_syntax_error_has_line_and_column() -> None:
    text = "format: rayweave.workflow/1\nname: x\nnodes:\n  a: [1, 2\n  b: 3\n"
    with pytest.raises(WorkflowLoadError) as info:
        load_workflow_text(text, "yaml")
    assert info.value.line == 5 and info.value.column is not None
    assert "invalid YAML" in info.value.message


def test_shape_error_names_the_field_path_and_its_line() -> None:
    text = json.dumps(DESIGN_EXAMPLE, indent=2).replace('"exponential"', '"linear"')
    line = next(i for i, s in enumerate(text.splitlines(), 1) if '"linear"' in s)
    with pytest.raises(WorkflowLoadError) as info:
        load_workflow_text(text)
    assert info.value.path == "nodes.mean.retry.backoff"
    assert info.value.line == line
    assert "fixed" in info.value.message


def test_every_problem_is_reported_in_yaml_too() -> None:
    text = "format: rayweave.workflow/1\nname: x\nnodes:\n  a:\n    type: t/inc@1\n    bogus: 1\n  b: {}\n"
    with pytest.raises(WorkflowLoadError) as info:
        load_workflow_text(text)
    found = {(p.path, p.line) for p in info.value.problems}
    assert ("nodes.a.bogus", 6) in found
    assert ("nodes.b.type", 7) in found  # a missing field points at its enclosing node


def test_not_a_mapping_and_empty_text_are_load_errors() -> None:
    for text in ("[1, 2]", "", "just a string"):
        with pytest.raises(WorkflowLoadError, match="a workflow document is a mapping"):
            load_workflow_text(text)


def test_wrong_format_says_it_is_not_a_rayweave_document() -> None:
    with pytest.raises(WorkflowLoadError, match="not a rayweave workflow document"):
        load_workflow_text('{"format": "other/1", "name": "x"}')


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_save_and_load_file_round_trip(tmp_path: Path, suffix: str) -> None:
    doc = load_workflow(DESIGN_EXAMPLE)
    path = tmp_path / f"wf{suffix}"
    save_workflow(doc, path)
    assert load_workflow_file(path) == doc
    assert load_workflow(path).to_data() == DESIGN_EXAMPLE
    assert load_workflow(str(path)).to_data() == DESIGN_EXAMPLE


def test_dump_json_is_canonical_text() -> None:
    doc = load_workflow(DESIGN_EXAMPLE)
    assert json.loads(dump_workflow(doc)) == DESIGN_EXAMPLE
    assert load_workflow_text(dump_workflow(doc, "yaml"), "yaml") == doc


def test_load_workflow_accepts_text() -> None:
    assert load_workflow(json.dumps(DESIGN_EXAMPLE)).name == "mean-of-csv"


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_workflow_file(tmp_path / "nope.json")


def test_dumping_a_non_json_constant_names_the_field() -> None:
    from engine.workflow import Workflow

    wf = Workflow("objects")
    wf.add("a", "t/inc@1", x={1, 2})
    with pytest.raises(WorkflowLoadError) as info:
        wf.to_json()
    assert info.value.path == "nodes.a.in.x.value"
