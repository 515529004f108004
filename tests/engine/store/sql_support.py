"""Test support for the SQL backend: the one place tests outside `engine/store` reach below the `Store` protocol.

Tests use the protocol wherever it can say what they need; these helpers do what it deliberately cannot (make
and drop PostgreSQL databases, empty every table, break or rewind rows the way a crash or an operator would), each
named for what it does, so no other test module imports SQLAlchemy (tests/test_layering.py checks it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.store import Store
from engine.store.columns import JSONValue, UTCDateTime, utcnow
from engine.store.migrate import upgrade_database
from engine.store.models import Event, NodeRun, Run, metadata, table_of
from engine.store.store import SqlStore
from tests.mariadb import MARIADB_SERVER, mariadb_unavailable
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


def _mariadb_admin() -> sa.Engine:
    return sa.create_engine(MARIADB_SERVER, connect_args={"connect_timeout": 3})


def create_mariadb_database(name: str) -> str:
    """Create the MariaDB database `name` (utf8mb4, binary collation without padding: compared like the other
    backends do) and return its URL (skips, or fails in CI, when the server is down)."""
    admin = _mariadb_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    except sa.exc.OperationalError as exc:
        mariadb_unavailable(
            f"MariaDB on 127.0.0.1:3306 is not reachable ({exc.orig}); start it to run these tests"
        )
    finally:
        admin.dispose()
    return f"{MARIADB_SERVER}/{name}"


@contextmanager
def mariadb_admin_connection() -> Iterator[sa.Connection]:
    """A connection to the MariaDB server as root, outside any database (to create, alter, drop them)."""
    admin = _mariadb_admin()
    try:
        with admin.connect() as conn:
            yield conn
    finally:
        admin.dispose()


def drop_mariadb_database(url: str) -> None:
    """Drop the MariaDB database at `url`."""
    name = url.rsplit("/", 1)[1]
    admin = _mariadb_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.dispose()


def clone_mariadb_schema(template_url: str, name: str) -> str:
    """A new MariaDB database `name` with the tables of the migrated one at `template_url` (from SHOW CREATE
    TABLE: constraints, indexes and all) and its Alembic revision, but no other rows: a migrated store in a
    fraction of the migrations' time. Returns its URL."""
    url = create_mariadb_database(name)
    template = template_url.rsplit("/", 1)[1]
    with mariadb_admin_connection() as conn:
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        for table in ["alembic_version", *(t.name for t in metadata.sorted_tables)]:
            ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE `{template}`.`{table}`").one()[1]
            conn.exec_driver_sql(f"USE `{name}`")
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql(
            f"INSERT INTO `{name}`.alembic_version SELECT * FROM `{template}`.alembic_version"
        )
        conn.commit()
    return url


@contextmanager
def mariadb_database(prefix: str = "rayweave_test") -> Iterator[str]:
    """A new, empty MariaDB database (its URL) for the block, dropped afterwards."""
    url = create_mariadb_database(f"{prefix}_{uuid.uuid4().hex[:12]}")
    try:
        yield url
    finally:
        drop_mariadb_database(url)


def empty_every_table(store: Store) -> None:
    """Delete every row of a PostgreSQL or MariaDB store and restart its identity counters (a fresh
    installation)."""
    engine = _sql(store).engine
    if engine.dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        return
    # MariaDB: DELETE is much faster than TRUNCATE (DDL) on small tables; the counters restart by ALTER only
    # where rows were added (the information schema's AUTO_INCREMENT says so).
    with engine.begin() as conn:
        moved = (
            conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND auto_increment > 1"
            )
            .scalars()
            .all()
        )
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    with engine.begin() as conn:
        for name in moved:
            conn.exec_driver_sql(f"ALTER TABLE `{name}` AUTO_INCREMENT = 1")


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
        quote = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"ALTER TABLE {quote(table)} RENAME TO {quote(new_name)}")


def backdate_run(store: Store, run_id: str, moment: datetime) -> None:
    """Make a run look created, started and finished at `moment` (a run that old, for retention)."""
    runs = table_of(Run)
    with _sql(store).engine.begin() as conn:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(created_at=moment, started_at=moment, finished_at=moment)
        )


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
