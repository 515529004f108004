"""Import and export: single workflows and whole-installation archives, round trip and validation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.store import Store
from engine.store.archive import ArchiveError, export_archive, import_archive, import_workflow
from tests.engine.store.conformance.populate import populate


def test_archive_round_trip_is_exact(store: Store, tmp_path: Any) -> None:
    from engine.store import open_store

    populate(store)
    first = export_archive(store, include_runs=True)
    assert {len(w["versions"]) for w in first["workflows"]} == {1, 2}
    assert sum(len(r["events"]) for r in first["runs"]) == 10
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    report = import_archive(other, json.loads(json.dumps(first)))
    assert report.added == {"workflows": 2, "workflow_versions": 3, "runs": 6, "node_runs": 10, "events": 10}
    assert export_archive(other, include_runs=True) == first
    # Imported rows behave like native ones: history, latest version, run events after a sequence.
    etl = next(w for w in first["workflows"] if w["name"] == "etl")
    assert [v.version for v in other.workflows.history(etl["id"])] == [2, 1]
    run_id = next(r["id"] for r in first["runs"] if r["events"])
    assert [e.seq for e in other.events.read(run_id, after=1)] == [2]
    other.close()


def test_importing_twice_adds_nothing_the_second_time(store: Store) -> None:
    populate(store)
    archive = export_archive(store, include_runs=True)
    report = import_archive(store, archive)
    assert report.added == {}
    assert report.skipped["workflow_versions"] == 3 and report.skipped["runs"] == 6
    assert export_archive(store, include_runs=True) == archive


def test_import_rejects_invalid_documents_naming_workflow_version_and_field(store: Store) -> None:
    populate(store)
    archive = export_archive(store)
    broken = copy.deepcopy(archive)
    etl = next(w for w in broken["workflows"] if w["name"] == "etl")
    del etl["versions"][0]["document"]["nodes"]["a"]["type"]
    with pytest.raises(ArchiveError, match=r"version 1.*nodes\.a\.type") as info:
        import_archive(store, broken)
    assert etl["id"] in str(info.value)
    tampered = copy.deepcopy(archive)
    tampered["workflows"][0]["versions"][0]["document"]["name"] = "renamed"
    with pytest.raises(ArchiveError, match="content_hash"):
        import_archive(store, tampered)
    with pytest.raises(ArchiveError, match=r"rayweave\.archive/1"):
        import_archive(store, {"format": "rayweave.workflow/1"})


def test_import_refuses_a_version_that_exists_with_other_content(store: Store) -> None:
    from engine.store.canonical import content_hash

    populate(store)
    archive = export_archive(store)
    version = archive["workflows"][0]["versions"][0]
    version["document"]["description"] = "edited elsewhere"
    version["content_hash"] = content_hash(version["document"])
    with pytest.raises(ArchiveError, match="different content"):
        import_archive(store, archive)


def test_single_workflow_import_creates_then_versions_only_on_change(store: Store) -> None:
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {"a": {"type": "t/a@1"}}, "outputs": {}}
    v1 = import_workflow(store, doc)
    assert v1.version == 1
    assert import_workflow(store, doc, workflow_id=v1.workflow_id).version == 1
    changed = {**doc, "description": "now documented"}
    assert import_workflow(store, changed, workflow_id=v1.workflow_id).version == 2
    with pytest.raises(ArchiveError, match="retires"):
        import_workflow(store, {**doc, "nodes": {"a": {"type": "t/a@1", "retires": 3}}})
