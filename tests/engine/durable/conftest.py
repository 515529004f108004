"""Fixtures of the durability tests: stores (SQLite, and PostgreSQL where the test says so) and a counter dir."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cluster.settings import Settings
from engine.store import Store, open_store
from engine.store.models import metadata
from tests.postgres import postgres_unavailable

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The SQLite store of the test's installation."""
    opened = open_store(settings.resolved_database_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def durable_pg_url() -> Iterator[str]:
    """A PostgreSQL database (127.0.0.1:5432, user postgres) for this session, dropped at the end."""
    admin = sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"rayweave_durable_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """An empty store on each backend."""
    if request.param == "sqlite":
        opened = open_store(settings.resolved_database_url)
    else:
        opened = open_store(request.getfixturevalue("durable_pg_url"))
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        with opened.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    yield opened
    opened.close()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The directory the test nodes count their executions in."""
    path = tmp_path / "log"
    path.mkdir()
    return path
