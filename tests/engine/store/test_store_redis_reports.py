"""The Redis backend's reports and bulk reads answer as SQLite's do on the same history (copied into Redis with
the NDJSON import, so ids and times are equal), and a deleted run leaves no entry in the indexes they read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest

from engine.store import NewEvent, Store
from engine.store.bulk import BULK_KEYS, BULK_KINDS
from engine.store.ndjson import export_lines, import_lines
from engine.store.redis import RedisStore
from engine.store.shares import Audience
from engine.store.transfer import copy_installation
from nodes.ids import RunId
from tests.engine.store.conformance import utcnow
from tests.engine.store.redis_support import redis_store

DOC = {"format": "rayweave.workflow/1", "name": "etl", "nodes": {"a": {"type": "t/a@1"}}}


@pytest.fixture
def rstore() -> Iterator[RedisStore]:
    with redis_store() as made:
        yield made


def _history(store: Store) -> list[str]:
    """Workflows (one deleted), versions, runs in every state with attempts, and the events analytics read."""
    t0 = utcnow() - timedelta(hours=2)
    wf = store.workflows.create(DOC, owner="ada").workflow_id
    store.workflows.save(wf, {**DOC, "name": "etl2"}, expected_version=1)
    gone = store.workflows.create({**DOC, "name": "old"}, owner="bob").workflow_id
    store.workflows.delete(gone)
    ids = []
    for i, status in enumerate(["succeeded", "failed", "running", "succeeded", "queued"]):
        run = store.runs.create(
            workflow_id=wf if i % 2 == 0 else None,
            document=None if i % 2 == 0 else DOC,
            owner=["ada", "bob"][i % 2],
            at=t0 + timedelta(minutes=i),
            idempotency_key=f"k{i}",
        ).run
        ids.append(run.id)
        if status == "queued":
            continue
        store.runs.update_status(run.id, "running", at=t0 + timedelta(minutes=i, seconds=1))
        start = t0 + timedelta(minutes=i, seconds=2)
        store.node_runs.start(run.id, "a", node_type="t/a@1", at=start)
        store.node_runs.finish(
            run.id, "a", 1, status="failed", error={"type": "E"}, at=start + timedelta(seconds=1)
        )
        store.node_runs.start(run.id, "a", node_type="t/a@1", at=start + timedelta(seconds=2))
        store.node_runs.record(run.id, "b", attempt=1, status="cached", node_type="t/b@1", cache_hit=True)
        store.events.append(
            run.id,
            [
                NewEvent("node.retrying", "a", {"failed_attempt": 1, "cpu_s": 0.25, "memory_bytes": 10}),
                NewEvent("node.cached", "b", {"type": "t/b@1", "level": "disk"}),
                NewEvent("node.log", "a", {"line": "x" * 50}),
            ],
        )
        if status == "running":
            continue
        store.node_runs.finish(run.id, "a", 2, status="succeeded", at=start + timedelta(seconds=5 + i))
        store.events.append(
            run.id,
            [
                NewEvent("node.succeeded", "a", {"attempt": 2, "cpu_s": 1.5 + i, "output_bytes": 2**40 + i}),
                NewEvent("anomaly.detected", None, {"kind": ["slow", "costly"][i % 2], "value": i}),
            ],
        )
        store.runs.update_status(run.id, status, at=t0 + timedelta(minutes=i, seconds=30))
    return ids


def _rows(store: Store, kind: str) -> list[dict[str, Any]]:
    rows = [row for row in store.bulk.page(kind, limit=10_000)]
    return sorted(rows, key=lambda row: tuple(row[k] for k in BULK_KEYS[kind]))


def _batches(batches: Iterator[list[Any]]) -> list[Any]:
    return sorted((row for batch in batches for row in batch), key=lambda row: json.dumps(row, default=str))


def test_an_imported_history_reads_and_reports_as_on_sqlite(rstore: RedisStore, sqlite_store: Store) -> None:
    ids = _history(sqlite_store)
    redis_as_store = cast(Store, rstore)
    report = import_lines(redis_as_store, export_lines(sqlite_store))
    assert report.added == {"workflows": 2, "workflow_versions": 3, "runs": 5, "node_runs": 12, "events": 18}
    for kind in BULK_KINDS:
        assert _rows(rstore, kind) == _rows(sqlite_store, kind), kind
        # Pages of three follow the key as SQL's do.
        paged, after = [], None
        while page := rstore.bulk.page(kind, after=after, limit=3):
            paged += page
            after = tuple(page[-1][k] for k in BULK_KEYS[kind])
        assert paged == rstore.bulk.page(kind, limit=10_000), kind
    a, b = rstore.reports, sqlite_store.reports
    snapshot, expected = a.metrics_snapshot(), b.metrics_snapshot()
    assert snapshot.runs_by_status == expected.runs_by_status
    figures = {(f.node_type, f.status): f for f in snapshot.node_runs}
    assert set(figures) == {(f.node_type, f.status) for f in expected.node_runs}
    for want in expected.node_runs:  # SQLite's julianday() is exact to about 0.1 ms only
        got = figures[(want.node_type, want.status)]
        assert (got.count, got.finished, got.cache_hits) == (want.count, want.finished, want.cache_hits)
        assert got.finished_seconds == pytest.approx(want.finished_seconds, abs=0.01)
    since = utcnow() - timedelta(hours=2) + timedelta(minutes=2)
    for reader in (a.run_history, a.node_run_history):
        theirs = getattr(b, reader.__name__)
        assert _batches(reader()) == _batches(theirs())
        assert _batches(reader(since=since, batch_rows=2)) == _batches(theirs(since=since, batch_rows=2))
    until = utcnow()
    assert _batches(a.finished_runs(after=None, until=until)) == _batches(
        b.finished_runs(after=None, until=until)
    )
    first_finished = rstore.runs.get(RunId(ids[0])).finished_at
    assert [r["run_id"] for batch in a.finished_runs(after=first_finished, until=until) for r in batch] == [
        ids[1],
        ids[3],
    ]
    assert _batches(a.node_runs_of(ids, chunk=2)) == _batches(b.node_runs_of(ids, chunk=2))
    assert a.attempt_events_of(ids) == b.attempt_events_of(ids)
    assert a.cache_levels_of(ids[:1]) == {(ids[0], "b"): "disk"}
    assert a.anomaly_counts() == b.anomaly_counts() == {"slow": 1, "costly": 2}
    assert a.anomaly_events() == b.anomaly_events()
    assert a.anomaly_events(limit=1) == b.anomaly_events(limit=1)
    wf = rstore.workflows.list()[0].id
    assert a.anomaly_events(workflow_id=wf) == b.anomaly_events(workflow_id=wf)
    # Imported again: nothing changes.
    again = import_lines(redis_as_store, export_lines(sqlite_store))
    assert sum(again.added.values()) == 0


def test_a_deleted_run_leaves_no_entry_in_the_report_indexes(rstore: RedisStore) -> None:
    run = rstore.runs.create(document=DOC).run
    rstore.runs.update_status(run.id, "succeeded")
    rstore.events.append(run.id, [NewEvent("anomaly.detected", None, {"kind": "slow"})])
    prefix = rstore.prefix
    indexes = [f"{prefix}:runs:ids", f"{prefix}:runs:finished", f"{prefix}:anomalies"]
    assert all(rstore.client.zcard(index) == 1 for index in indexes)
    assert rstore.reports.anomaly_counts() == {"slow": 1}
    rstore.runs.delete(run.id)
    assert [rstore.client.zcard(index) for index in indexes] == [0, 0, 0]
    assert rstore.reports.anomaly_events() == [] and rstore.reports.metrics_snapshot().runs_by_status == {}


def test_run_scopes_and_visible_anomalies_match_sqlite(rstore: RedisStore, sqlite_store: Store) -> None:
    s = sqlite_store
    acme = s.tenants.create("acme").id
    ada = s.users.create("ada", role="owner").id
    bob = s.users.create("bob").id
    cy = s.users.create("cy", tenant_id=acme).id
    wfs = {who: s.workflows.create({**DOC, "name": who}, owner=who).workflow_id for who in (ada, bob, cy)}
    gone = s.workflows.create({**DOC, "name": "gone"}, owner=cy).workflow_id
    s.shares.set(wfs[cy], "user", bob, "viewer")
    s.shares.set(gone, "tenant", "default", "viewer")
    for n, (wf, owner) in enumerate(
        [(wfs[ada], bob), (wfs[cy], cy), (gone, cy), (None, bob), (wfs[bob], ada)]
    ):
        run = s.runs.create(workflow_id=wf, document=None if wf else DOC, owner=owner).run
        s.events.append(run.id, [NewEvent("anomaly.detected", None, {"kind": "slow", "n": n})])
    s.workflows.delete(gone)  # its runs stay visible to whoever may see it
    copy_installation(s, rstore)
    audiences = [
        Audience(ada, "default", True),
        Audience(bob, "default"),
        Audience(cy, acme),
        Audience(cy, acme, True),
    ]
    for audience in audiences:
        assert rstore.reports.run_scope(audience) == s.reports.run_scope(audience), audience
        assert rstore.reports.anomaly_events(visible_to=audience) == s.reports.anomaly_events(
            visible_to=audience
        )
    seen = [len(rstore.reports.anomaly_events(visible_to=audience)) for audience in audiences]
    assert seen == [4, 5, 2, 2]  # bob: shared wfs too; ada's tenant: not cy's workflow shared only with bob


def test_the_node_figures_follow_starts_finishes_records_and_deletes_as_on_sqlite(
    rstore: RedisStore, sqlite_store: Store
) -> None:
    t0 = utcnow() - timedelta(minutes=5)
    for store in (rstore, sqlite_store):
        kept, gone = (store.runs.create(document=DOC).run.id for _ in range(2))
        for run in (kept, gone):
            store.node_runs.start(run, "a", node_type="t/a@1", at=t0)
            store.node_runs.finish(run, "a", 1, status="failed", at=t0 + timedelta(seconds=2))
            store.node_runs.start(run, "a", node_type="t/a@1", at=t0 + timedelta(seconds=3))
            rows = [{"run_id": run, "node_id": "b", "attempt": 1, "status": "cached", "cache_hit": True}]
            store.node_runs.record_many([*rows, {**rows[0], "node_id": "c", "node_type": "t/c@1"}])
        store.node_runs.finish(kept, "a", 2, status="succeeded", at=t0 + timedelta(seconds=7))
        store.runs.delete(gone)
    mine, theirs = rstore.reports.metrics_snapshot(), sqlite_store.reports.metrics_snapshot()
    figures = {(f.node_type, f.status): f for f in mine.node_runs}
    assert (
        set(figures)
        == {(f.node_type, f.status) for f in theirs.node_runs}
        == {
            ("t/a@1", "failed"),
            ("t/a@1", "succeeded"),
            ("", "cached"),
            ("t/c@1", "cached"),
        }
    )
    for want in theirs.node_runs:
        got = figures[(want.node_type, want.status)]
        assert (got.count, got.finished, got.cache_hits) == (want.count, want.finished, want.cache_hits)
        assert got.finished_seconds == pytest.approx(want.finished_seconds, abs=0.01)
    rstore.runs.delete(rstore.runs.list().items[0].id)
    assert rstore.reports.metrics_snapshot().node_runs == []
    assert not rstore.client.exists(f"{rstore.prefix}:stats:attempts")  # every figure went with its runs
