"""Fixtures of the Feast plugin's tests: the plugin loaded in its own runtime environment on the session Ray,
and a real local Feast repository made under a temporary directory (`repos.make_repo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.nodes.firstparty.feast.repos import make_repo

FEAST_PLUGIN = Path(__file__).resolve().parents[4] / "nodes" / "firstparty" / "feast"


@pytest.fixture(scope="session")
def feast_nodes(ray_session: Any) -> dict[str, Any]:
    """The Feast plugin's node definitions by type id, read inside its runtime environment."""
    from nodes.plugins.testing import load_plugin

    return load_plugin(FEAST_PLUGIN)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Feast repository shared by a module's read-only tests (never materialized)."""
    return make_repo(tmp_path_factory.mktemp("feast") / "repo")
