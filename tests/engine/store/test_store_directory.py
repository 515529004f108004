"""A directory of JSON/YAML workflow files as a read-only workflow source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.store import NotFoundError
from engine.store.archive import ArchiveError
from engine.store.canonical import content_hash
from engine.store.directory import WorkflowDirectory

DOC = {"format": "rayweave.workflow/1", "name": "etl", "nodes": {"a": {"type": "t/a@1"}}, "outputs": {}}


def test_lists_json_and_yaml_files_recursively_with_store_compatible_hashes(tmp_path: Path) -> None:
    (tmp_path / "teams" / "data").mkdir(parents=True)
    (tmp_path / "etl.json").write_text(json.dumps(DOC))
    (tmp_path / "teams" / "data" / "report.yaml").write_text(
        "format: rayweave.workflow/1\nname: report\nnodes:\n  a:\n    type: t/a@1\noutputs: {}\n"
    )
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "ignored.json").write_text("{}")
    (tmp_path / "README.md").write_text("not a workflow")
    source = WorkflowDirectory(tmp_path)
    found = source.list()
    assert [(w.id, w.name) for w in found] == [("dir:etl", "etl"), ("dir:teams/data/report", "report")]
    assert found[0].content_hash == content_hash(DOC)
    assert source.get("dir:teams/data/report").document["name"] == "report"


def test_missing_escaping_and_invalid_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text(json.dumps(DOC))
    source = WorkflowDirectory(tmp_path / "sub")
    (tmp_path / "sub").mkdir()
    with pytest.raises(NotFoundError, match="nope"):
        source.get("dir:nope")
    with pytest.raises(NotFoundError):
        source.get("dir:../ok")
    (tmp_path / "sub" / "bad.yaml").write_text("format: rayweave.workflow/1\nname: bad\nnodes: {a: {}}\n")
    with pytest.raises(ArchiveError, match=r"bad\.yaml.*nodes\.a\.type"):
        source.list()
