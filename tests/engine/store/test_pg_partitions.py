"""PostgreSQL partitions events and node runs by hash of the run id (migration 0010, ADR 023): existing rows are
carried over, and the hot queries never read the big tables sequentially."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from engine.store import Store, open_store
from engine.store.events import NewEvent
from engine.store.partitions import PARTITIONS, partition_name
from engine.store.shares import Audience
from nodes.ids import NodeId, RunId
from tests.engine.store import pg_plans, sql_support

BIG_TABLES = {"events", "node_runs", "runs"}


@pytest.fixture(scope="module")
def migrated() -> Iterator[tuple[Store, dict[str, list[dict[str, Any]]]]]:
    """A PostgreSQL store that held runs at revision 0009 and was then upgraded, with its rows before the
    upgrade."""
    with sql_support.postgres_database("rayweave_partitions") as url:
        store = open_store(url, upgrade=False)
        try:
            sql_support.upgrade_store_to(store, "0009")
            wf = store.workflows.create({"name": "w", "nodes": {}})
            for _ in range(3):
                run = store.runs.create(workflow_id=wf.workflow_id).run
                store.events.append(run.id, [NewEvent(type="run.queued"), NewEvent(type="anomaly.detected")])
                store.node_runs.record(run.id, NodeId("a"), attempt=1, status="failed")
                store.node_runs.record(run.id, NodeId("a"), attempt=2, status="succeeded")
            before = {t: sql_support.stored_rows(store, t) for t in ("events", "node_runs")}
            assert pg_plans.partition_strategy(store, "events") is None
            sql_support.upgrade_store_to(store, "head")
            yield store, before
        finally:
            store.close()


def test_migration_partitions_events_and_node_runs_by_run_and_keeps_their_rows_both_ways(
    migrated: tuple[Store, dict[str, list[dict[str, Any]]]],
) -> None:
    store, before = migrated
    for table in ("events", "node_runs"):
        assert pg_plans.partition_strategy(store, table) == "hash"
        assert pg_plans.partitions_of(store, table) == [partition_name(table, n) for n in range(PARTITIONS)]
        assert sorted(map(repr, sql_support.stored_rows(store, table))) == sorted(map(repr, before[table]))
    run_id = RunId(before["events"][0]["run_id"])
    # The per-run sequence goes on after the copied events; a repeated number is still refused.
    assert store.events.append(run_id, [NewEvent(type="run.started")]) == [3]
    assert [e.seq for e in store.events.read(run_id, after=1)] == [2, 3]
    assert [n.attempt for n in store.node_runs.list(run_id)] == [1, 2]
    store.runs.delete(run_id)  # the foreign keys cascade into the partitions
    assert store.events.read(run_id) == [] and store.node_runs.list(run_id) == []
    # Downgrading makes plain tables again with the rows; upgrading once more partitions them again.
    kept = {t: sorted(map(repr, sql_support.stored_rows(store, t))) for t in ("events", "node_runs")}
    pg_plans.downgrade(store, "0009")
    assert pg_plans.partition_strategy(store, "events") is None
    assert {t: sorted(map(repr, sql_support.stored_rows(store, t))) for t in kept} == kept
    sql_support.upgrade_store_to(store, "head")
    assert pg_plans.partition_strategy(store, "node_runs") == "hash"


def test_hot_queries_use_indexes_and_would_scan_without_them(
    migrated: tuple[Store, dict[str, list[dict[str, Any]]]],
) -> None:
    store, _ = migrated
    wf = store.workflows.create({"name": "busy", "nodes": {}})
    # 2,000 runs x 40 events (80,000) x 20 node runs (40,000): each partition holds thousands of rows, so the
    # planner's choice of an index is a choice (on a few pages it would read the table whatever indexes exist).
    pg_plans.fill(store, wf.workflow_id, runs=2000, events=40, nodes=20, active_every=50)
    run = RunId("run-0001234")
    hot: dict[str, tuple[Callable[[], object], str]] = {
        "events after a sequence": (lambda: store.events.read(run, after=30), "events"),
        "a run's node runs": (lambda: store.node_runs.list(run), "node_runs"),
        "a run's latest attempts": (lambda: store.node_runs.latest(run), "node_runs"),
        "a workflow's runs by status": (
            lambda: store.runs.list(workflow_id=wf.workflow_id, status="running", limit=50),
            "runs",
        ),
        "an owner's runs": (lambda: store.runs.list(owner="user-3", limit=50), "runs"),
        "the newest runs": (lambda: store.runs.list(limit=50), "runs"),
        "the runs a user may see": (
            lambda: store.runs.list(visible_to=Audience("user-3", "default"), limit=50),
            "runs",
        ),
        "stale runs": (lambda: store.runs.stale(timedelta(seconds=30)), "runs"),
        "claim a run": (lambda: store.runs.claim(run, "sweep-1", timedelta(seconds=30)), "runs"),
        "a run": (lambda: store.runs.get(run), "runs"),
    }
    for name, (query, table) in hot.items():
        with pg_plans.recorded_statements(store) as statements:
            query()
        reads = [s for s in statements if table in s.sql]
        assert reads, f"{name}: no statement on {table} recorded"
        for statement in reads:
            scanned = pg_plans.seq_scanned(store, statement)
            assert not scanned & BIG_TABLES, f"{name}: sequential scan of {scanned} in\n{statement.sql}"
        # The counter-check: without the table's indexes the same statement reads it end to end, and the check
        # above sees it (it is not vacuous: a dropped or unusable index fails this test).
        assert table in pg_plans.seq_scanned(store, reads[0], without_indexes_of=[table]), name
