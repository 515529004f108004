"""Shared fixtures: one embedded Ray for the whole test session, and isolated settings per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection, ensure_ray, loopback_environment, shutdown_ray
from cluster.settings import Settings

# Every Ray this test session starts (the fixture, or a CLI command run in-process) stays on loopback.
for _key, _value in loopback_environment().items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayConnection]:
    """One local Ray (4 logical CPUs, loopback only, token auth on, no dashboard) for the whole session."""
    settings = Settings(home=tmp_path_factory.mktemp("rayweave-home"))
    connection = ensure_ray(settings, num_cpus=4, include_dashboard=False)
    yield connection
    shutdown_ray()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a fresh installation under this test's temporary directory (SQLite, local cache)."""
    return Settings(home=tmp_path / "home")
