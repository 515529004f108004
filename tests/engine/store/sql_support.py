"""Test support for the SQL backend: the one place tests outside `engine/store` reach below the `Store` protocol.

Tests use the protocol wherever it can say what they need; these helpers do what it deliberately cannot (make
and drop PostgreSQL databases, empty every table, break or rewind rows the way a crash or an operator would), each
named for what it does, so no other test module imports SQLAlchemy (tests/test_layering.py checks it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from engine.store import Store
from engine.store.columns import JSONValue, UTCDateTime, utcnow
from engine.store.migrate import upgrade_database
from engine.store.models import Event, NodeRun, Run, metadata, table_of
from engine.store.store import SqlStore
from tests.postgres import PG_SERVER, postgres_unavailable


def _sql(store: Store) -> SqlStore:
    if not isinstance(store, SqlStore):
        raise TypeError(f"this test support works on the SQL backend only, not {type(store).__name__}")
    return store


def _admin() -> sa.Engine:
    return sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


def create_postgres_database(name: str) -> str:
    """Create the PostgreSQL database `name` and return its URL (skips, or fails in CI, when the server is down)."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        postgres_unavailable(
            f"PostgreSQL on 127.0.0.1:5432 is not reachable ({exc.orig}); start it to run these tests"
        )
    finally:
        admin.dispose()
    return f"{PG_SERVER}/{name}"


def drop_postgres_database(url: str) -> None:
    """Drop the PostgreSQL database at `url`, closing whatever connections it still has."""
    name = url.rsplit("/", 1)[1]
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def postgres_database(prefix: str = "rayweave_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL) for the block, dropped afterwards."""
    url = create_postgres_database(f"{prefix}_{uuid.uuid4().hex[:12]}")
    try:
        yield url
    finally:
        drop_postgres_database(url)


def empty_every_table(store: Store) -> None:
    """Delete every row of a PostgreSQL store and restart its identity counters (a fresh installation)."""
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with _sql(store).engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def checkpoint_sqlite(store: Store) -> None:
    """Fold a SQLite store's write-ahead log into its main file, so a plain copy of the file is complete."""
    with _sql(store).engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def stored_rows(store: Store, table: str) -> list[dict[str, Any]]:
    """Every row of `table` exactly as the database holds it (to check what is, and is not, stored)."""
    with _sql(store).engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(metadata.tables[table])).mappings()]


def rename_table(store: Store, table: str, new_name: str) -> None:
    """Rename a table: a real database failure for every statement that uses it."""
    with _sql(store).engine.begin() as conn:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{new_name}"')


def forget_node_attempts(store: Store, run_id: str, node_ids: Sequence[str]) -> None:
    """Delete every recorded attempt of `node_ids` in a run (a coordinator that died before recording them)."""
    node_runs = table_of(NodeRun)
    with _sql(store).engine.begin() as conn:
        conn.execute(
            sa.delete(node_runs).where(node_runs.c.run_id == run_id, node_runs.c.node_id.in_(node_ids))
        )


def rewind_to_crash(store: Store, run_id: str, *, running: str, later: Sequence[str]) -> None:
    """Rewind a finished run's rows to what a coordinator dying while node `running` ran leaves behind.

    Events after `running`'s `node.started` go, the attempts of the nodes in `later` go, `running`'s attempt is
    `running` again without result, and the run is `running` with a heartbeat a minute old.
    """
    runs, node_runs, events = table_of(Run), table_of(NodeRun), table_of(Event)
    with _sql(store).engine.begin() as conn:
        started = conn.execute(
            sa.select(events.c.seq).where(
                events.c.run_id == run_id, events.c.type == "node.started", events.c.node_id == running
            )
        ).scalar_one()
        conn.execute(sa.delete(events).where(events.c.run_id == run_id, events.c.seq > started))
        conn.execute(sa.delete(node_runs).where(node_runs.c.run_id == run_id, node_runs.c.node_id.in_(later)))
        conn.execute(
            sa.update(node_runs)
            .where(node_runs.c.run_id == run_id, node_runs.c.node_id == running)
            .values(status="running", finished_at=None, result_location=None)
        )
        old = utcnow() - timedelta(minutes=1)
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(status="running", finished_at=None, last_seq=started, heartbeat_at=old, updated_at=old)
        )


def edit_audit_entry(store: Store, entry_id: int, **values: Any) -> None:
    """Change columns of one stored audit entry behind the store's back (an operator tampering with the log)."""
    entries = metadata.tables["audit_entries"]
    with _sql(store).engine.begin() as conn:
        conn.execute(sa.update(entries).where(entries.c.id == entry_id).values(**values))


def delete_audit_entry(store: Store, entry_id: int) -> None:
    """Delete one stored audit entry behind the store's back."""
    entries = metadata.tables["audit_entries"]
    with _sql(store).engine.begin() as conn:
        conn.execute(sa.delete(entries).where(entries.c.id == entry_id))


def insert_unchained_audit_entries(store: Store, rows: Sequence[dict[str, Any]]) -> None:
    """Insert audit entries as a database before migration 0004 holds them (no hash columns yet)."""
    entries = sa.table(
        "audit_entries",
        *(sa.column(name) for name in ("actor", "action", "resource_type", "resource_id", "outcome")),
        sa.column("at", UTCDateTime()),
        sa.column("details", JSONValue),
    )
    with _sql(store).engine.begin() as conn:
        conn.execute(sa.insert(entries), list(rows))


def upgrade_store_to(store: Store, revision: str) -> None:
    """Migrate a store opened with `upgrade=False` to `revision` ("head" for the newest)."""
    upgrade_database(_sql(store).engine, revision)


def dump_tables(store: Store) -> str:
    """Every row of every table of the store as text (to search for what must never be stored in the clear)."""
    with _sql(store).engine.connect() as conn:
        return "\n".join(
            repr(dict(row))
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table)).mappings()
        )


def insert_raw_rows(store: Store, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows into `table` as the database's current schema has it (reflected, not the models': a store
    at an older revision, before a migration's test)."""
    engine = _sql(store).engine
    reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(reflected.insert(), list(rows))
