"""The jail's non-root path (`--unshare-user`: a worker that is not root and has no capabilities), exercised by
a worker process whose user is not root.

Why a user namespace and not `setpriv --reuid=65534` (nobody): this installation's interpreter lives under
`/root` (pyenv), which only root may enter, so a worker running as nobody cannot start it (bubblewrap's
`execvp` of it is refused: tried). The worker here runs in a new user namespace as user 65534 mapped onto the
host's root: inside it is not root and has no capabilities, so the jail takes exactly the non-root path
(`bwrap --unshare-user`, no `drop_root`, call folders owned by the worker itself), while files keep the host
owner's access. Two things differ from a real unprivileged host user and are not checked here: the kernel does
not enforce `RLIMIT_NPROC` for processes whose real user is the host's root (the fork bomb is tested on the
root path, test_hostile_nodes.py), and cgroups owned by the host's root look writable (the worker is told to
use `RLIMIT_AS`, as where no cgroup is delegated).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent.parent


def _user_namespaces() -> bool:
    if shutil.which("bwrap") is None or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-user=65534", "--map-group=65534", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="needs bubblewrap and unprivileged user namespaces")
def test_the_jail_works_for_a_worker_that_is_not_root(tmp_path: Path) -> None:
    command = ["unshare", "--user", "--map-user=65534", "--map-group=65534", sys.executable]
    command += [
        str(HERE / "unprivileged_worker.py"),
        str(ROOT),
        str(HERE / "plugins" / "hostile"),
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["euid"] == 65534 and "--unshare-user" in seen["command"]
    assert seen["scale"] == ["ok", {"v0": 3.0, "v1": 6.0}]
    assert seen["read_file"][0] == "SandboxedNodeError" and "FileNotFoundError" in seen["read_file"][1]
    assert seen["write_file"][0] == "SandboxedNodeError" and not (tmp_path / "outside").exists()
    assert seen["allocate"][0] == "MemoryLimitExceeded" and "MemoryError" in seen["allocate"][1]
    assert seen["spin"][0] == "CpuTimeLimitExceeded", seen["spin"]
    # The process the littering call left running and its scratch file are gone before the next call.
    outcome, looked = seen["look_around"]
    assert outcome == "ok" and looked["scratch"] == [] and len(looked["processes"]) == 3, looked
