"""Fixtures of the store tests: every test taking `store` runs once on each backend of `BACKENDS`.

PostgreSQL is the server on 127.0.0.1:5432 (user postgres, trust auth). The session creates a uniquely named
database, migrates it once, empties its tables before each test and drops it at the end. Without a reachable
server the PostgreSQL variants are skipped with the reason shown (in CI they fail).

A new backend plugs into the conformance suite (`conformance/`) with one fixture yielding an empty store of it
and one entry in `BACKENDS` (ADR 011).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Store, open_store
from tests.engine.store import sql_support

#: Each backend the `store` fixture (and so the conformance suite) runs on: its test id and the fixture that
#: yields an empty, ready store of it.
BACKENDS = {"sqlite": "sqlite_store", "postgresql": "postgresql_store"}


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database owned by this test session (dropped afterwards)."""
    with sql_support.postgres_database("rayweave_test") as url:
        yield url


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """Another empty PostgreSQL database, for tests that need two (copies between installations)."""
    url = sql_support.create_postgres_database(f"{pg_url.rsplit('/', 1)[1]}_{uuid.uuid4().hex[:6]}")
    try:
        yield url
    finally:
        sql_support.drop_postgres_database(url)


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
    sql_support.checkpoint_sqlite(store)
    store.close()
    return path


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated SQLite store in a file of the test's own."""
    path = tmp_path / "rayweave.db"
    shutil.copy(sqlite_template, path)
    store = open_store(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture
def postgresql_store(pg_store: Store) -> Store:
    """The session's PostgreSQL store, emptied."""
    sql_support.empty_every_table(pg_store)
    return pg_store


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest) -> Store:
    """An empty, ready store on each backend."""
    backend: Store = request.getfixturevalue(BACKENDS[request.param])
    return backend
