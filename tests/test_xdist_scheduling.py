"""`make test`'s pytest-xdist scheduler: a crashed test process fails its test and the run still ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FILES = {
    "conftest.py": (
        "from tests.xdist_scheduling import make_scheduler\n\n\n"
        "def pytest_xdist_make_scheduler(config, log):\n"
        "    return make_scheduler(config, log)\n"
    ),
    "test_1_crash.py": "import os\n\n\ndef test_crash():\n    os._exit(1)\n\n\ndef test_after_crash():\n    pass\n",
    "test_2_fine.py": "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
    "test_3_crash.py": "import os\n\n\ndef test_before_crash():\n    pass\n\n\ndef test_crash():\n    os._exit(1)\n",
    "test_4_fine.py": "def test_c():\n    pass\n",
}


@pytest.mark.timeout(300)
def test_crashed_test_processes_fail_their_test_and_the_run_ends(tmp_path: Path) -> None:
    # pytest-xdist 3.8.0's own loadfile scheduler hangs on these files with -n 2 (the finished files of a
    # crashed process come back as empty work) and runs each crashed test again in the replacement process.
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_ADDOPTS": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            *("-n", "2", "--dist", "loadfile"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert "2 failed, 5 passed" in out, out[-3000:]
    for crashed in ("test_1_crash.py::test_crash", "test_3_crash.py::test_crash"):
        assert f"FAILED {crashed}" in out, out[-3000:]
