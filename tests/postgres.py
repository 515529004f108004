"""What a PostgreSQL test does when the server is down: skip on a developer machine, fail in CI.

CI (`CI=true`, set by the CI runner) must never pass by skipping the PostgreSQL half of the store tests;
`.ci/run` starts the server when it is down.
"""

from __future__ import annotations

import os
import uuid
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
    import sqlalchemy as sa

    admin = sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        postgres_unavailable(
            f"PostgreSQL on 127.0.0.1:5432 is not reachable ({exc.orig}); start it to run this test"
        )
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
