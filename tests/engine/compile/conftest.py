"""Fixtures for compiler tests: a catalog with the test nodes, and a small document factory."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.compile import nodes_for_tests


@pytest.fixture(scope="module")
def catalog() -> Any:
    """Built-in catalog plus the `t/...` test nodes."""
    return nodes_for_tests.catalog()
