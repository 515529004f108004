"""`rayweave run --address` joins a separate Ray cluster (issue 4: "works on a Ray cluster joined by address").

The cluster is a throwaway head in its own process group (`LocalCluster`, shared with the durability tests);
the session's own Ray in this process is not touched.

Token auth (Ray 2.60 keeps it on): a client must present the head's token. The head reads it from
`RAY_AUTH_TOKEN`, else `RAY_AUTH_TOKEN_PATH`, else `~/.ray/auth_token` (generated there on first start). An
operator gives the machine that runs `rayweave run --address` / `rayweave serve --address` the same token the
same way (e.g. copy the head's `~/.ray/auth_token`, or export `RAY_AUTH_TOKEN`) with `RAY_AUTH_MODE=token`.
Here both sides get one made-up `RAY_AUTH_TOKEN`, so the test does not depend on this machine's token file.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.durable.cluster import LocalCluster
from tests.engine.durable.driver import ROOT, subprocess_env


@pytest.mark.slow
def test_run_joins_a_cluster_by_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = secrets.token_hex(16)
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)  # read by LocalCluster's head through its environment
    cluster = LocalCluster()
    try:
        cluster.start()
        command = [str(Path(sys.executable).with_name("rayweave")), "run", "examples/fan_out_join.json"]
        command += ["--input", "a=5", "--address", cluster.address, "--json"]
        env = subprocess_env(RAY_AUTH_TOKEN=token, RAYWEAVE_HOME=str(tmp_path / "home"))
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        cluster.close()
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["status"] == "succeeded" and doc["outputs"] == {"sum_of_squares": 25 + 4 + 9 + 16}
    assert {n["status"] for n in doc["nodes"].values()} == {"succeeded"}
