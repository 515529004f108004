"""What a PostgreSQL test does when the server is down: skip on a developer machine, fail in CI.

CI (`CI=true`, set by the CI runner) must never pass by skipping the PostgreSQL half of the store tests;
`.ci/run` starts the server when it is down.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def postgres_unavailable(message: str) -> NoReturn:
    """Skip the test with `message`, or fail it when running in CI."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI runs the PostgreSQL tests; .ci/run starts the server when it is down)")
    pytest.skip(message)
