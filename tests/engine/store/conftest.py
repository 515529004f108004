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
from typing import cast

import pytest

from engine.store import Store, open_store
from tests.engine.store import sql_support

#: The conformance modules the files backend runs: it is the SQLite backend but for workflows and their
#: versions, so the modules about workflows (and who may see them) say all there is to say about it.
FILES_MODULES = ("test_workflows", "test_tenants_roles_shares")

#: Each backend the `store` fixture (and so the conformance suite) runs on: its test id and the fixture that
#: yields an empty, ready store of it.
BACKENDS = {
    "sqlite": "sqlite_store",
    "postgresql": "postgresql_store",
    "mariadb": "mariadb_store",
    "files": "files_store",
    "redis": "redis_store",
}

#: The modules each partial backend runs (a backend not named here runs every conformance module).
PARTIAL_BACKENDS = {"files": FILES_MODULES}

#: Modules about the SQL tables themselves (the schema against the models, the JSON archive that reads and writes
#: the tables, a secret's hash in a column), which a backend without tables skips; it runs every other module.
SQL_TABLE_MODULES = ("test_store_schema", "test_store_archive", "test_store_sql")

#: The modules each backend skips.
SKIPPED_MODULES = {"redis": SQL_TABLE_MODULES}


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
def mariadb_url() -> Iterator[str]:
    """URL of a fresh, empty MariaDB database owned by this test session (dropped afterwards)."""
    with sql_support.mariadb_database("rayweave_test") as url:
        yield url


@pytest.fixture
def fresh_mariadb_url(mariadb_url: str) -> Iterator[str]:
    """Another empty MariaDB database, for tests that need two (copies between installations)."""
    url = sql_support.create_mariadb_database(f"{mariadb_url.rsplit('/', 1)[1]}_{uuid.uuid4().hex[:6]}")
    try:
        yield url
    finally:
        sql_support.drop_mariadb_database(url)


@pytest.fixture
def migrated_mariadb_url(mariadb_session_store: Store, mariadb_url: str) -> Iterator[str]:
    """Another MariaDB database with the store's schema and no rows (cloned from the session's, for tests that
    need two stores)."""
    name = f"{mariadb_url.rsplit('/', 1)[1]}_{uuid.uuid4().hex[:6]}"
    url = sql_support.clone_mariadb_schema(mariadb_url, name)
    try:
        yield url
    finally:
        sql_support.drop_mariadb_database(url)


@pytest.fixture(scope="session")
def mariadb_session_store(mariadb_url: str) -> Iterator[Store]:
    """One migrated MariaDB store for the session (tests get it emptied through `store`)."""
    store = open_store(mariadb_url)
    yield store
    store.close()


@pytest.fixture
def mariadb_store(mariadb_session_store: Store) -> Store:
    """The session's MariaDB store, emptied."""
    sql_support.empty_every_table(mariadb_session_store)
    return mariadb_session_store


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
def files_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """An empty files store: workflows and versions as files in a folder of the test's own, the rest in a
    SQLite file (`engine.store.files_store`)."""
    path = tmp_path / "rayweave.db"
    shutil.copy(sqlite_template, path)
    store = open_store(f"sqlite:///{path}", workflows_dir=tmp_path / "workflows")
    yield store
    store.close()


@pytest.fixture
def redis_store() -> Iterator[Store]:
    """An empty Redis store under a key prefix of the test's own, its keys deleted afterwards
    (`tests/engine/store/redis_support.py`; its URL accepts the test server's durability)."""
    from tests.engine.store.redis_support import redis_store as make

    with make() as store:
        yield cast(Store, store)


@pytest.fixture
def postgresql_store(pg_store: Store) -> Store:
    """The session's PostgreSQL store, emptied."""
    sql_support.empty_every_table(pg_store)
    return pg_store


@pytest.fixture(params=["sqlite", "postgresql"])
def sqlite_or_postgresql_store(request: pytest.FixtureRequest) -> Store:
    """An empty store on SQLite and on PostgreSQL only, for the few heavy tests whose property does not depend
    on the backend (the 100,000-event export in bounded memory: keyset pages; it passed on MariaDB in 20 s at
    load 16, too long to repeat in every run)."""
    backend: Store = request.getfixturevalue(BACKENDS[request.param])
    return backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test taking `store` on each backend of `BACKENDS` (a partial backend: only in its modules of
    `PARTIAL_BACKENDS`; none in its `SKIPPED_MODULES`)."""
    if "store" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    names = [
        name
        for name in BACKENDS
        if module in PARTIAL_BACKENDS.get(name, (module,)) and module not in SKIPPED_MODULES.get(name, ())
    ]
    metafunc.parametrize(
        "store",
        [pytest.param(name, marks=pytest.mark.mariadb) if name == "mariadb" else name for name in names],
        indirect=True,
    )


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Store:
    """An empty, ready store on each backend (parametrized by `pytest_generate_tests`)."""
    backend: Store = request.getfixturevalue(BACKENDS[request.param])
    return backend
