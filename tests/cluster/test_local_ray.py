"""`rayweave ray start|status|stop`: a local Ray held between commands, which `rayweave run` joins.

The held Ray is the embedded one (loopback only, token authentication on); a run joining it skips Ray's start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.local_ray import LocalRay, record_path, recorded_ray
from serve.cli import build_app
from tests.sockets import descendants, listening_addresses, socket_inodes

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "fan_out_join.json"


def rayweave(
    home: Path, *args: str, timeout: float = 240, address: str = ""
) -> subprocess.CompletedProcess[str]:
    """`rayweave ARGS...` in a fresh process with RAYWEAVE_HOME=`home` (and no Ray address configured unless
    `address` is given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAYWEAVE_RAY_ADDRESS", "RAY_ADDRESS")}
    env["RAYWEAVE_HOME"] = str(home)
    if address:
        env["RAYWEAVE_RAY_ADDRESS"] = address
    return subprocess.run(
        [sys.executable, "-c", "from serve.cli import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def timed_run(home: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = rayweave(home, "run", str(WORKFLOW), "--input", "a=5", "--json", "--no-cache")
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["outputs"] == {"sum_of_squares": 25 + 4 + 9 + 16}
    return took, done


@pytest.mark.slow
def test_rayweave_run_joins_the_local_ray_that_rayweave_ray_start_holds(tmp_path: Path) -> None:
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    home = tmp_path / "held"
    started = rayweave(home, "ray", "start", "--num-cpus", "2", "--json")
    assert started.returncode == 0, started.stderr[-3000:]
    held = json.loads(started.stdout)
    try:
        assert held["started"] is True and held["address"].startswith("127.0.0.1:")
        again = json.loads(rayweave(home, "ray", "start", "--json").stdout)
        assert again["started"] is False and again["pid"] == held["pid"], (
            "a second start must not start a Ray"
        )

        # The held Ray follows the embedded Ray's rules: loopback only, and no call without the token.
        listening = listening_addresses(socket_inodes(descendants(held["pid"])))
        assert listening, "found no listening socket of the held Ray; the check would prove nothing"
        exposed = [a for a in listening if not ipaddress.ip_address(a[0]).is_loopback]
        assert exposed == [], f"the held Ray listens beyond loopback: {exposed}"
        with grpc.insecure_channel(held["address"]) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetAllNodeInfo(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # Joining skips Ray's start (a run that starts its own Ray, as `make demo` does, is tested there).
        _, joined = timed_run(home)
        assert f"Connecting to existing Ray cluster at address: {held['address']}" in joined.stderr
        assert "Started a local Ray instance" not in joined.stderr

        # The same Ray named by its loopback address, from another home: `rayweave run` imports Ray before it
        # connects, which once made the join hang (Ray rewrote 127.0.0.1 to the machine's address).
        explicit = rayweave(
            tmp_path / "explicit",
            "run",
            str(WORKFLOW),
            "--input",
            "a=2",
            "--json",
            "--no-cache",
            address=held["address"],
            timeout=120,
        )
        assert explicit.returncode == 0, explicit.stderr[-3000:]
        assert json.loads(explicit.stdout)["outputs"] == {"sum_of_squares": 4 + 4 + 9 + 16}
        assert f"Connecting to existing Ray cluster at address: {held['address']}" in explicit.stderr

        status = json.loads(rayweave(home, "ray", "status", "--json").stdout)
        assert status["running"] is True and status["address"] == held["address"]
    finally:
        stopped = rayweave(home, "ray", "stop", "--json")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True, stopped.stderr[-3000:]
    assert not record_path(home).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(held["pid"], 0)
    status = rayweave(home, "ray", "status", "--json")
    assert status.returncode == 1 and json.loads(status.stdout) == {"running": False}


def test_a_record_whose_holder_is_gone_or_not_on_loopback_is_never_joined(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    record_path(home).write_text(json.dumps(LocalRay("127.0.0.1:6379", dead_pid, None, 0.0).to_json()))
    assert recorded_ray(home) is None
    assert not record_path(home).exists(), "a record left by a dead holder is removed"

    # A live process (this one) but an address beyond loopback: this machine's Ray is never elsewhere.
    record_path(home).write_text(json.dumps(LocalRay("10.0.0.5:6379", os.getpid(), None, 0.0).to_json()))
    assert recorded_ray(home) is None
    record_path(home).write_text("not json")
    assert recorded_ray(home) is None


def test_ray_stop_and_status_when_none_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    stopped = runner.invoke(build_app(), ["ray", "stop"])
    assert stopped.exit_code == 0 and "no local Ray was running" in stopped.output
    status = runner.invoke(build_app(), ["ray", "status"])
    assert status.exit_code == 1 and "rayweave ray start" in status.output
