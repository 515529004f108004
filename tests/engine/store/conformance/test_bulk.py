"""`store.bulk`: keyset pages in key order (with `since`), and writes that keep keys, skip what is present,
replace a newer copy and refuse a changed version or a missing parent, naming the row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.store import NewEvent, Store
from engine.store.bulk import BULK_KINDS
from engine.store.errors import BulkRowError
from tests.engine.store.conformance import utcnow


def test_pages_follow_the_key_and_since(store: Store) -> None:
    run = store.runs.create(document={"format": "rayweave.workflow/1", "name": "w", "nodes": {}}).run
    store.events.append(run.id, [NewEvent("node.log", "n", {"i": i}) for i in range(7)])
    seen, after = [], None
    while True:
        page = store.bulk.page("events", after=after, limit=3)
        seen += [row["seq"] for row in page]
        if len(page) < 3:
            break
        after = (page[-1]["run_id"], page[-1]["seq"])
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert store.bulk.page("events", since=utcnow() + timedelta(minutes=1)) == []
    assert [r["id"] for r in store.bulk.page("runs", since=utcnow() - timedelta(minutes=1))] == [run.id]
    for kind in BULK_KINDS:
        assert isinstance(store.bulk.page(kind), list)
    with pytest.raises(ValueError, match="unknown bulk kind 'bogus'"):
        store.bulk.page("bogus")


def test_writes_keep_keys_skip_present_rows_and_replace_newer_ones(store: Store) -> None:
    version = store.workflows.create({"format": "rayweave.workflow/1", "name": "w", "nodes": {}})
    run = store.runs.create(workflow_id=version.workflow_id, workflow_version=1).run
    store.events.append(run.id, [NewEvent("run.started")])
    runs, events = store.bulk.page("runs"), store.bulk.page("events")
    again = store.bulk.put("events", events)
    assert (again.added, again.updated, again.skipped) == (0, 0, 1)
    newer = {**runs[0], "status": "succeeded", "updated_at": utcnow() + timedelta(seconds=1)}
    assert store.bulk.put("runs", [newer]).updated == 1
    assert store.runs.get(run.id).status == "succeeded"
    moved = [{**events[0], "seq": 5}]
    assert store.bulk.put("events", moved).added == 1
    assert store.events.append(run.id, [NewEvent("run.succeeded")]) == [6]  # numbered after the import


def test_writes_refuse_changed_versions_and_missing_parents(store: Store) -> None:
    version = store.workflows.create({"format": "rayweave.workflow/1", "name": "w", "nodes": {}})
    row = store.bulk.page("workflow_versions")[0]
    with pytest.raises(BulkRowError, match="already exists here with different content") as info:
        store.bulk.put("workflow_versions", [{**row, "content_hash": "0" * 64}])
    assert (info.value.index, info.value.field) == (0, "content_hash")
    event = {
        "run_id": "nope",
        "seq": 1,
        "type": "run.started",
        "node_id": None,
        "payload": {},
        "created_at": utcnow(),
    }
    with pytest.raises(BulkRowError, match="run 'nope' is neither in this store") as info:
        store.bulk.put("events", [event])
    assert info.value.field == "run_id"
    assert store.workflows.latest(version.workflow_id).version == 1
