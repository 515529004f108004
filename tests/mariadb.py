"""The MariaDB server the tests use, and what a MariaDB test does when it is down: skip on a developer machine,
fail in CI (`CI=true`), like `tests.postgres`; `.ci/run` starts the server when it is down."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: The MariaDB server (root, empty password); each test database is created by `tests.engine.store.sql_support`.
MARIADB_SERVER = "mariadb+pymysql://root@127.0.0.1:3306"


def mariadb_unavailable(message: str) -> NoReturn:
    """Skip the test with `message`, or fail it when running in CI."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI runs the MariaDB tests; .ci/run starts the server when it is down)")
    pytest.skip(message)
