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


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under `--dist loadfile` (`make test`), a scheduler that does not hang the run when a test process crashes."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.xdist_scheduling import make_scheduler

    return make_scheduler(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding slow tests run first, each file's tests in their own order.

    `make test` hands whole files to two processes in collection order (pytest-xdist, `--dist loadfile`): a
    slow file left for last would keep one process busy while the other has finished.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within each group stays


#: How long past its own timeout (pytest-timeout's, which raises in the test's main thread) a test may still be
#: stuck before its process prints every thread's stack and exits. pytest-timeout's signal is not heard by a
#: thread blocked in C code that never returns to Python; this backstop is (`faulthandler` has a thread of its
#: own). A CI run was once held for 90 minutes by a test that its timeout did not stop.
HARD_TIMEOUT_GRACE_S = 60
_STDERR_FD = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    """Keep a descriptor of the real standard error: while a test runs, pytest captures descriptor 2."""
    config.stash[_STDERR_FD] = os.dup(2)


def _test_timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        return float(item.config.getini("timeout") or 0)
    except ValueError:
        return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A test still stuck `HARD_TIMEOUT_GRACE_S` after its timeout ends its process, every stack printed.

    Under `make test`, pytest-xdist reports the test as failed (its process crashed) and hands the rest of its
    file to a new process without that test (tests/xdist_scheduling.py): a hang costs minutes and names itself
    instead of holding the whole run until CI gives up."""
    import faulthandler

    timeout = _test_timeout(item)
    if timeout > 0:
        stderr = item.config.stash[_STDERR_FD]
        faulthandler.dump_traceback_later(timeout + HARD_TIMEOUT_GRACE_S, exit=True, file=stderr)
    try:
        yield
    finally:
        if timeout > 0:
            faulthandler.cancel_dump_traceback_later()
