"""The database accepts only the states and event types of `nodes.states` (migration 0003, CHECK constraints).

The upgrade runs on databases that already hold runs, node runs and events (made by the store at revision
0002), on SQLite, PostgreSQL and MariaDB: nothing is lost (on SQLite the tables are rebuilt, and a rebuilt runs table
must not take its runs' events and node runs with it), and afterwards an unknown value is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import MigrationError, open_store
from engine.store.events import NewEvent
from engine.store.migrate import current_revision, head_revision, upgrade_database
from engine.store.store import SqlStore
from nodes.states import EventType, NodeStatus, RunStatus

DOCUMENT = {"format": "rayweave.workflow/1", "name": "closed", "nodes": {}, "outputs": {}}
COLUMNS = (("runs", "status", RunStatus), ("node_runs", "status", NodeStatus), ("events", "type", EventType))


@pytest.fixture(params=["sqlite", "postgresql", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    """A store at revision 0002 (before the constraints), closed by the test."""
    servers = {"postgresql": "fresh_pg_url", "mariadb": "fresh_mariadb_url"}
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue(servers[request.param])
    )
    store = open_store(url, upgrade=False)
    upgrade_database(store.engine, "0002")
    request.addfinalizer(store.close)
    return store


def _fill(store: SqlStore) -> list[str]:
    """Runs in every run state, each with node attempts in several states and a few events."""
    ids = []
    for status in RunStatus:
        run = store.runs.create(document=DOCUMENT, status=status).run
        for node, node_status in enumerate((NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED)):
            store.node_runs.start(run.id, f"n{node}", status=node_status)
        store.events.append(run.id, [NewEvent(type=EventType.RUN_QUEUED), NewEvent(type=EventType.NODE_LOG)])
        ids.append(run.id)
    return ids


def _count(store: SqlStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _allowed(store: SqlStore, table: str) -> set[str]:
    """The values the database's CHECK constraint on `table` names."""
    checks = sa.inspect(store.engine).get_check_constraints(table)
    assert len(checks) == 1, checks
    return set(re.findall(r"'([^']*)'", checks[0]["sqltext"]))


def test_upgrade_keeps_every_row_and_then_refuses_unknown_values(old_store: SqlStore) -> None:
    ids = _fill(old_store)
    before = {table: _count(old_store, table) for table in ("runs", "node_runs", "events")}
    assert upgrade_database(old_store.engine) == head_revision()

    assert {table: _count(old_store, table) for table in before} == before
    assert [old_store.runs.get(run_id).status for run_id in ids] == list(RunStatus)
    assert [e.type for e in old_store.events.read(ids[0])] == [EventType.RUN_QUEUED, EventType.NODE_LOG]
    for table, column, enum in COLUMNS:
        assert _allowed(old_store, table) == set(enum), f"{table}.{column}"
    # The rebuilt SQLite tables still cascade: deleting a run deletes its node runs and events.
    old_store.runs.delete(ids[0])
    assert _count(old_store, "node_runs") == before["node_runs"] - 3
    assert _count(old_store, "events") == before["events"] - 2

    run_id = ids[1]
    for statement in (
        "UPDATE runs SET status = 'done' WHERE id = :id",
        "UPDATE node_runs SET status = 'ok' WHERE run_id = :id",
        "UPDATE events SET type = 'node.finished' WHERE run_id = :id",
    ):
        with pytest.raises(sa.exc.IntegrityError), old_store.engine.begin() as conn:
            conn.execute(sa.text(statement), {"id": run_id})
    with pytest.raises(sa.exc.IntegrityError):
        old_store.runs.update_status(run_id, "paused")


# Not on MariaDB: the refusal happens before any DDL, the same code on every backend, and a MariaDB database at
# 0002 costs seconds to make (the upgrade with data runs on it above).
@pytest.mark.parametrize("old_store", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_stops_on_unknown_values_and_names_them(old_store: SqlStore) -> None:
    run_id = _fill(old_store)[0]
    with old_store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET status = 'paused' WHERE id = :id"), {"id": run_id})

    with pytest.raises(MigrationError) as caught:
        upgrade_database(old_store.engine)

    message = str(caught.value)
    assert "runs" in message and "'paused' (1 rows)" in message and "queued, running" in message
    assert current_revision(old_store.engine) == "0002"
    assert _count(old_store, "events") == 2 * len(RunStatus)  # nothing was rebuilt or lost
