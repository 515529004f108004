"""Every Python example of docs/guides/collaboration.md runs against a served app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.serve.collab.conftest import Served

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "collaboration.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_guide_python_block_runs(block: str, api: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYWEAVE_URL", api.url)
    monkeypatch.setenv("RAYWEAVE_API_KEY", api.admin_key)
    exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide_example"})
