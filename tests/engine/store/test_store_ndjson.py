"""NDJSON export and import (`engine.store.ndjson`): round trip, idempotence, bad input named by line and field,
CloudEvents lines, and an export of 100,000 events in bounded memory, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.store import NewEvent, Store, open_store
from engine.store.ndjson import NdjsonError, export_lines, import_lines, parse_kinds
from tests.engine.store.conformance import utcnow
from tests.engine.store.conformance.populate import populate


def _export(store: Store, **options: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in export_lines(store, **options)]


def _text(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) + "\n" for r in records]


def _without_header(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return records[1:]


@pytest.fixture
def other(tmp_path: Path, sqlite_template: Path) -> Any:
    """A second, empty SQLite store (a copy of the session's migrated template)."""
    shutil.copy(sqlite_template, tmp_path / "other.db")
    target = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    yield target
    target.close()


def test_round_trip_keeps_every_record_and_reimport_adds_nothing(store: Store, other: Store) -> None:
    populate(store)
    records = _export(store)
    assert records[0] == {
        "kind": "header",
        "format": "rayweave.ndjson/1",
        "kinds": ["workflows", "workflow_versions", "runs", "node_runs", "events"],
        "since": None,
        "events": "native",
    }
    counts = {"workflow": 2, "workflow_version": 3, "run": 6, "node_run": 10, "event": 10}
    assert records[-1] == {"kind": "end", "counts": counts}
    report = import_lines(other, _text(records))
    assert report.added == {"workflows": 2, "workflow_versions": 3, "runs": 6, "node_runs": 10, "events": 10}
    assert _export(other) == records  # ids, versions, sequences and times kept exactly
    again = import_lines(other, _text(records))
    assert again.added == {} and again.updated == {}
    assert again.skipped == {"workflows": 2, "workflow_versions": 3, "runs": 6, "node_runs": 10, "events": 10}
    # Imported runs go on numbering their events after the imported ones.
    run_id = next(r["run_id"] for r in records if r["kind"] == "event")
    assert other.events.append(run_id, [NewEvent("node.log", payload={"m": "x"})]) == [3]


def test_a_newer_copy_of_a_run_replaces_the_older_one(store: Store, other: Store) -> None:
    run = store.runs.create(document={"format": "rayweave.workflow/1", "name": "w", "nodes": {}}).run
    first = _export(store)
    import_lines(other, _text(first))
    store.runs.update_status(run.id, "running")
    store.events.append(run.id, [NewEvent("run.started")])
    since = utcnow()
    store.runs.update_status(run.id, "succeeded", outputs={"y": 1})
    store.events.append(run.id, [NewEvent("run.succeeded")])
    later = _export(store, since=since)
    assert [r["kind"] for r in later[1:-1]] == ["run", "event"]  # only what changed since
    # The incremental export misses run.started (before `since`): the full one brings it.
    report = import_lines(other, _text(later))
    assert report.updated == {"runs": 1} and report.added == {"events": 1}
    assert other.runs.get(run.id).status == "succeeded" and other.runs.get(run.id).outputs == {"y": 1}
    assert import_lines(other, _text(_export(store))).added == {"events": 1}
    assert [e.type for e in other.events.read(run.id)] == ["run.started", "run.succeeded"]


def test_kinds_select_what_is_exported(store: Store) -> None:
    populate(store)
    records = _export(store, kinds=parse_kinds("workflows,workflow_version"))
    assert {r["kind"] for r in records[1:-1]} == {"workflow", "workflow_version"}
    with pytest.raises(ValueError, match=r"unknown kind.*'bogus'"):
        parse_kinds("runs,bogus")


def test_events_as_cloudevents_are_valid_and_import_back(store: Store, other: Store) -> None:
    from cloudevents.core.formats.json import JSONFormat

    populate(store, runs=1)
    records = _export(store, events="cloudevents")
    clouds = [r for r in records if "specversion" in r]
    assert len(clouds) == 2
    for cloud in clouds:
        event = JSONFormat().read(None, json.dumps(cloud))  # the CloudEvents SDK validates the attributes
        assert event.get_specversion() == "1.0"
        assert event.get_source() == f"/rayweave/runs/{cloud['id'].rsplit(':', 1)[0]}"
        assert event.get_time() is not None and event.get_time().tzinfo is not None
    assert clouds[1]["type"] == "io.rayweave.node.started" and clouds[1]["subject"] == "a"
    assert clouds[1]["data"] == {"attempt": 1} and clouds[1]["datacontenttype"] == "application/json"
    import_lines(other, _text(records))
    assert _export(other) == _export(store)  # the CloudEvents lines carried every field


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda rs: rs.__setitem__(3, {**rs[3], "seq": "x"}),
            r"line 4, field 'seq': .*integer.*\(in the event record\)",
        ),
        (lambda rs: rs.__setitem__(3, {**rs[3], "type": "node.exploded"}), r"line 4, field 'type'"),
        (
            lambda rs: rs.__setitem__(1, {**rs[1], "colour": 1}),
            r"line 2, field 'colour': .*not permitted \(in the run",
        ),
        (
            lambda rs: rs.__setitem__(1, {**rs[1], "kind": "runz"}),
            r"line 2, field 'kind': unknown kind 'runz'",
        ),
        (lambda rs: rs.__setitem__(0, {**rs[0], "format": "rayweave.ndjson/2"}), r"line 1.*newer rayweave"),
        (lambda rs: rs.__delitem__(0), r"line 1, field 'kind': not a rayweave NDJSON export"),
        (lambda rs: rs.__delitem__(-1), r"line 4: .*truncated; lines up to 4 were imported"),
        (lambda rs: rs.__delitem__(3), r"line 4, field 'counts': .*2 event record\(s\) but 1"),
    ],
)
def test_bad_lines_are_named_by_number_and_field(
    sqlite_store: Store, other: Store, edit: Any, message: str
) -> None:
    store = sqlite_store  # lines are validated before the store is asked: one backend is enough
    run = store.runs.create(document={"format": "rayweave.workflow/1", "name": "w", "nodes": {}}).run
    store.events.append(run.id, [NewEvent("run.started"), NewEvent("run.succeeded")])
    records = _export(store, kinds=("runs", "events"))
    assert [r["kind"] for r in records] == ["header", "run", "event", "event", "end"]
    edit(records)
    with pytest.raises(NdjsonError, match=message):
        import_lines(other, _text(records))


def test_corrupt_json_and_missing_parents_are_named(store: Store, other: Store) -> None:
    populate(store, runs=1)
    lines = _text(_export(store, kinds=("node_runs", "events")))
    with pytest.raises(
        NdjsonError, match=r"line 2, field 'run_id': node_run: run '.+' is neither in this store"
    ):
        import_lines(other, lines)
    truncated = _text(_export(store))
    truncated[-2] = truncated[-2][:20]
    with pytest.raises(NdjsonError, match=r"line 12: not valid JSON.*lines up to 11 were imported"):
        import_lines(other, truncated, batch_rows=1)
    # Resumable: the complete file finishes the import.
    assert import_lines(other, _text(_export(store))).added == {"events": 1}


def test_a_version_with_other_content_is_refused(store: Store, other: Store) -> None:
    populate(store, runs=0)
    records = _export(store, kinds=("workflows", "workflow_versions"))
    import_lines(other, _text(records))
    version = next(r for r in records if r["kind"] == "workflow_version")
    version["document"]["name"] = "changed"
    with pytest.raises(NdjsonError, match="content_hash does not match"):
        import_lines(other, _text(records))
    from engine.store.canonical import content_hash

    version["content_hash"] = content_hash(version["document"])
    with pytest.raises(
        NdjsonError, match=r"field 'content_hash'.*already exists here with different content"
    ):
        import_lines(other, _text(records))


_EXPORTER = """
import resource, sys, time
from engine.store import open_store
from engine.store.ndjson import export_lines
store = open_store(sys.argv[1])

def export(kinds, path):
    size = 0
    with open(path, "wb") as out:
        for line in export_lines(store, kinds=kinds):
            out.write(line)
            size += len(line)
    return size

export(("workflows",), sys.argv[2] + ".none")  # warms up every import and code path
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
size = export(("events",), sys.argv[2])
elapsed = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(baseline * 1024, peak * 1024, size, elapsed)
"""


def _export_in_a_process(url: str, out: Path) -> tuple[int, int, int, float]:
    """Export the events of the store at `url` into `out` in a fresh process: its peak RSS (bytes) before and
    after the export, the export's size and how long it took."""
    done = subprocess.run(
        [sys.executable, "-c", _EXPORTER, url, str(out)], capture_output=True, text=True, check=True
    )
    baseline, peak, size, elapsed = done.stdout.split()
    return int(baseline), int(peak), int(size), float(elapsed)


def test_100k_events_export_in_bounded_memory(sqlite_or_postgresql_store: Store, tmp_path: Path) -> None:
    store = sqlite_or_postgresql_store
    run = store.runs.create(document={"format": "rayweave.workflow/1", "name": "big", "nodes": {}}).run
    total, payload = 100_000, {"message": "x" * 400}
    for _ in range(0, total, 25_000):
        store.events.append(run.id, [NewEvent("node.log", "n", payload) for _ in range(25_000)])
    baseline, peak, size, elapsed = _export_in_a_process(store.connect_url, tmp_path / "events.ndjson")
    with (tmp_path / "events.ndjson").open("rb") as lines:
        assert sum(1 for _ in lines) == total + 2
    # The export (~50 MB) streams through pages of 1,000 rows: the exporting process grows by a few MB at most.
    assert size > 50_000_000
    assert peak - baseline < 20_000_000, (
        f"exporting {size / 1e6:.0f} MB grew the process by {(peak - baseline) / 1e6:.0f} MB"
    )
    print(
        f"\n{store.backend}: {total} events ({size / 1e6:.0f} MB) exported in {elapsed:.1f} s, "
        f"peak RSS {peak / 1e6:.0f} MB ({(peak - baseline) / 1e6:+.1f} MB over the process before it)"
    )
