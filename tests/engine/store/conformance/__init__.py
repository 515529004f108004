"""The conformance suite of the `Store` protocol (ADR 011): every backend must pass every test here.

The tests talk to the store only through the protocol (`engine.store.Store`): no SQLAlchemy, no `store.engine`,
no backend module (`test_suite_is_backend_agnostic` checks it). The `store` fixture (`tests/engine/store/
conftest.py`) gives each test an empty store of every backend in `BACKENDS`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (what the store returns)."""
    return datetime.now(UTC)
