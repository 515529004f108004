"""Fixtures of the store tests: every test taking `store` runs once on SQLite and once on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (user postgres, trust auth). The session creates a uniquely named
database, migrates it once, empties its tables before each test and drops it at the end. Without a reachable
server the PostgreSQL variants are skipped with the reason shown (in CI they fail).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import Store, open_store
from engine.store.models import metadata
from tests.postgres import postgres_unavailable

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _pg_admin() -> sa.Engine:
    return sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database owned by this test session (dropped afterwards)."""
    admin = _pg_admin()
    name = f"rayweave_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        postgres_unavailable(
            f"PostgreSQL on 127.0.0.1:5432 is not reachable ({exc.orig}); start it to run these tests"
        )
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """Another empty PostgreSQL database, for tests that need two (copies between installations)."""
    admin = _pg_admin()
    name = f"{pg_url.rsplit('/', 1)[1]}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_store(pg_url: str) -> Iterator[Store]:
    """One migrated PostgreSQL store for the session (tests get it emptied through `store`)."""
    store = open_store(pg_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it instead of running the migrations again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        # Fold the WAL into the main file so a plain copy of it is complete.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated store on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "rayweave.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        sqlite_store = open_store(f"sqlite:///{path}")
        yield sqlite_store
        sqlite_store.close()
        return
    shared: Store = request.getfixturevalue("pg_store")
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with shared.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    yield shared
