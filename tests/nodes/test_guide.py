"""Every Python block of docs/guides/writing-nodes.md runs, in order, as one module; its tests pass."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "writing-nodes.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_guide_examples_run(tmp_path: Path) -> None:
    blocks = _BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    # Written to a real file and imported (not exec'ed) so that node code versions hash real source, as in
    # a user's module.
    module_path = tmp_path / "writing_nodes_guide.py"
    module_path.write_text("\n\n".join(blocks), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("writing_nodes_guide", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["writing_nodes_guide"] = module
    try:
        spec.loader.exec_module(module)
        tests = [
            value for name, value in vars(module).items() if name.startswith("test_") and callable(value)
        ]
        assert len(tests) >= 5
        for test in tests:
            test()
    finally:
        del sys.modules["writing_nodes_guide"]


def test_guide_json_snippets_are_valid_json() -> None:
    import json

    for block in re.findall(
        r"^```json\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE
    ):
        json.loads(block)
