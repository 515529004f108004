"""Fixtures of the durability tests: a store and a result store under the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.store import Store, open_store


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The SQLite store of the test's installation."""
    opened = open_store(settings.resolved_database_url)
    yield opened
    opened.close()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The directory the test nodes count their executions in."""
    path = tmp_path / "log"
    path.mkdir()
    return path
