"""Ray's autoscaler, on its fake multi-node provider, adds worker nodes for a rayweave run and removes them
(issue 19).

A head of its own (`tests.cluster.autoscaling.FakeAutoscalingHead`: 0 CPUs, loopback only, a token of its own)
whose autoscaler may add up to two fake worker nodes of 1 CPU and 1 `fake_worker` each, removed 3 s after
their last use. `rayweave run --address` (a driver in a process of its own: this one may hold the session's
Ray) runs a workflow whose nodes ask for `fake_worker`: the two in parallel make the autoscaler add two nodes,
the run succeeds with its outputs, every node ran on one of the added nodes, and both are removed once idle,
their processes with them. The alive worker nodes are read from the head's GCS (the table `ray.nodes()`
reads) as they change. The config shown in docs/guides/deploying.md is the one the test uses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.store import open_store
from tests.cluster.autoscaling import RESOURCE, FakeAutoscalingHead, NodeWatch, autoscaling_config

IDLE_TIMEOUT_S = 3.0
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "deploying.md"


def workflow() -> dict[str, Any]:
    """Two waits in parallel, then their product; every node asks for the fake worker nodes' resource."""
    on_worker = {"custom": {RESOURCE: 1}}
    return {
        "format": "rayweave.workflow/1",
        "name": "autoscaled",
        "inputs": {"a": {"type": "Int", "default": 3}, "b": {"type": "Int", "default": 4}},
        "nodes": {
            "left": {
                "type": "builtin/sleep@1",
                "in": {"value": "$inputs.a"},
                "params": {"seconds": 1.0},
                "resources": on_worker,
            },
            "right": {
                "type": "builtin/sleep@1",
                "in": {"value": "$inputs.b"},
                "params": {"seconds": 1.0},
                "resources": on_worker,
            },
            "product": {
                "type": "builtin/multiply@1",
                "in": {"a": "left", "b": "right"},
                "resources": on_worker,
            },
        },
        "outputs": {"product": "product.out"},
    }


def kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group of `process` (started with `start_new_session`: itself and what it started)."""
    with contextlib.suppress(ProcessLookupError):  # none of the group is left
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def test_the_deploying_guide_shows_the_config_the_test_uses() -> None:
    import yaml

    section = GUIDE.read_text(encoding="utf-8").split("## Ray's autoscaler, tested on one machine", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == autoscaling_config("127.0.0.1:6380", max_workers=2, idle_timeout_s=3.0)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_autoscaler_adds_worker_nodes_for_a_run_and_removes_them_when_idle(tmp_path: Path) -> None:
    import grpc

    started = time.monotonic()
    head = FakeAutoscalingHead(max_workers=2, idle_timeout_s=IDLE_TIMEOUT_S)
    driver: subprocess.Popen[str] | None = None
    try:
        head.start()
        with NodeWatch(head) as watch:
            document = tmp_path / "autoscaled.json"
            document.write_text(json.dumps(workflow()))
            home = tmp_path / "home"
            rayweave = str(Path(sys.executable).with_name("rayweave"))
            driver = subprocess.Popen(
                [rayweave, "run", "--address", head.address, "--json", "--no-cache", str(document)],
                cwd=tmp_path,
                # Ray forwards the autoscaler's events ("Adding 2 node(s) ...") to the driver's stdout, which
                # `--json` keeps for its document alone (they go to stderr): stdout must parse as JSON.
                env=head.env(RAYWEAVE_HOME=str(home)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            # Token authentication is on: the GCS refuses a call with another token.
            with pytest.raises(grpc.RpcError) as refused:
                watch.workers(token="0" * 64)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            try:
                out, err = driver.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                kill_group(driver)
                raise AssertionError(
                    f"the run did not end within 90 s; the cluster:\n{head.tail()}"
                ) from None
            ran = time.monotonic()
            assert driver.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}\n{head.tail()}"
            result = json.loads(out)
            assert result["status"] == "succeeded" and result["outputs"] == {"product": 12}, result

            # The head offers no `fake_worker`: the autoscaler added the two nodes the parallel waits asked for
            # (the second may come up after the first has run all three and been removed, on a slow machine).
            watch.wait("two worker nodes added", lambda: len(watch.ids()) == 2, timeout_s=20)
            added = [node for _, nodes in watch.changes for node in nodes]
            assert all(node["resources"][RESOURCE] == 1 and node["resources"]["CPU"] == 1 for node in added)
            assert all(len(nodes) <= 2 for _, nodes in watch.changes), watch.changes  # max_workers holds
            # Every node of the run ran on one of them (the run is recorded: it started on a one-node cluster).
            with open_store(Settings(home=home).resolved_database_url) as store:
                events = store.events.read(result["run_id"])
            ran_on = {e.node: e.payload["ray_node"] for e in events if e.type == "node.succeeded"}
            assert set(ran_on) == {"left", "right", "product"}, ran_on
            assert set(ran_on.values()) <= watch.ids(), (ran_on, watch.changes)

            # Idle, both are removed (3 s after their last use, seen at the autoscaler's next look), and their
            # processes stop with them.
            watch.wait("no worker node left", lambda: not watch.changes[-1][1], timeout_s=IDLE_TIMEOUT_S + 20)
            removed = time.monotonic()
            deadline = time.monotonic() + 10
            while head.raylets() != 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert head.raylets() == 1
        # The fake nodes' processes were the head's descendants (a raylet each) and listened on loopback only,
        # as the head's do.
        assert watch.most_raylets >= 2 and watch.exposure_checks > 0, (
            watch.most_raylets,
            watch.exposure_checks,
        )
        assert not watch.exposed, watch.exposed
        first = next(t for t, nodes in watch.changes if nodes)
        both = next((t for t, nodes in watch.changes if len(nodes) == 2), None)
        gone = watch.changes[-1][0]
        print(
            f"\nrun {result['started_at'] - first:+.1f} s .. {result['finished_at'] - first:+.1f} s from the "
            f"first added node; both up {'-' if both is None else f'{both - first:.1f}'} s after it; none "
            f"{gone - result['finished_at']:.1f} s after the run's end; the driver exited {ran - started:.1f} s "
            f"and the nodes were gone {removed - started:.1f} s after the test's start"
        )
    finally:
        if driver is not None:
            kill_group(driver)
        left = head.close()
    # Nothing of the cluster is left: the head, its autoscaler, the fake nodes and their workers.
    assert left == [], f"processes of the test cluster still alive: {left}"
