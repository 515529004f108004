"""The roles matrix: every route and socket x every role x own/other tenant answers as `roles_matrix.json` says.

How the table is measured and how to regenerate it (after adding a route, or changing the policy on purpose):
see `tests/serve/api/roles_matrix.py`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.serve.api import roles_matrix


def test_every_route_and_role_answers_as_the_committed_matrix(tmp_path: Path) -> None:
    started = time.perf_counter()
    actual = roles_matrix.collect(tmp_path)
    elapsed = time.perf_counter() - started
    if os.environ.get("RAYWEAVE_WRITE_ROLES_MATRIX"):
        roles_matrix.write(actual)
        pytest.skip(f"wrote {roles_matrix.MATRIX_FILE}; review `git diff` on it and commit it")
    expected = json.loads(roles_matrix.MATRIX_FILE.read_text(encoding="utf-8"))
    problems = roles_matrix.compare(expected, actual)
    cells = sum(len(row) for row in actual.values())
    print(f"roles matrix: {len(actual)} rows, {cells} cells, {elapsed:.1f} s")
    assert not problems, f"{len(problems)} difference(s) from the committed roles matrix:\n" + "\n".join(
        problems
    )
