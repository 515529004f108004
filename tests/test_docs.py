"""The tutorials in docs/tutorials run as written: their Python blocks, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def test_there_are_tutorials_to_check() -> None:
    assert TUTORIALS, "docs/tutorials is empty: this test would prove nothing"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs_as_written(path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks, f"{path.name} has no python blocks"
    namespace: dict[str, object] = {"__name__": f"tutorial_{path.stem.replace('-', '_')}"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{path.name} (block {number})", "exec"), namespace)
