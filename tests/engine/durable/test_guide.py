"""Every Python block of docs/guides/durability.md runs, in order, as one module."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "durability.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_guide_examples_run() -> None:
    blocks = _BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert blocks, "the guide has no Python example"
    exec(compile("\n\n".join(blocks), str(GUIDE), "exec"), {"__name__": "durability_guide"})


def test_guide_names_the_functions_that_exist() -> None:
    from engine.durable import recovery, runner

    text = GUIDE.read_text(encoding="utf-8")
    assert "start_recovery(settings, interval_s=5.0, stale_after_s=10.0)" in text
    assert recovery.DEFAULT_INTERVAL_S == 5.0 and recovery.DEFAULT_STALE_AFTER_S == 10.0
    flags = "[--recovery-stale-after 60] [--recovery-start-grace 60] [--recovery-interval 5]"
    assert f"rayweave serve {flags}" in text
    from serve.config import ServeOptions

    served = ServeOptions()
    assert served.recovery_stale_after_s == served.recovery_start_grace_s == 60
    assert served.recovery_interval_s == 5
    assert "resume.pkl" in text and runner.RESUME_BLOB == "resume.pkl"
