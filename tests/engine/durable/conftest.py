"""Fixtures of the durability tests: stores (SQLite, and PostgreSQL where the test says so) and a counter dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.store import Store, open_store
from tests.engine.store import sql_support


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The SQLite store of the test's installation."""
    opened = open_store(settings.resolved_database_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def durable_pg_url() -> Iterator[str]:
    """A PostgreSQL database (127.0.0.1:5432, user postgres) for this session, dropped at the end."""
    with sql_support.postgres_database("rayweave_durable") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """An empty store on each backend."""
    if request.param == "sqlite":
        opened = open_store(settings.resolved_database_url)
    else:
        opened = open_store(request.getfixturevalue("durable_pg_url"))
        sql_support.empty_every_table(opened)
    yield opened
    opened.close()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The directory the test nodes count their executions in."""
    path = tmp_path / "log"
    path.mkdir()
    return path
