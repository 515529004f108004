"""What a PostgreSQL test does when the server is down: skip on a developer machine, fail in CI.

CI (`CI=true`, set by the CI runner) must never pass by skipping the PostgreSQL half of the store tests;
`.ci/run` starts the server when it is down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest


def postgres_unavailable(message: str) -> NoReturn:
    """Skip the test with `message`, or fail it when running in CI."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI runs the PostgreSQL tests; .ci/run starts the server when it is down)")
    pytest.skip(message)


#: The PostgreSQL server the tests use (trust authentication, user postgres).
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextmanager
def postgres_database(prefix: str = "rayweave_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL) for the block, dropped afterwards (skips or fails as
    `postgres_unavailable` says when the server is down)."""
    from tests.engine.store import sql_support

    with sql_support.postgres_database(prefix) as url:
        yield url
