"""Crash test (3): the whole Ray cluster dies mid-run (every process SIGKILLed); it is started again and
`rayweave runs resume` finishes the run without running a finished node again.

Uses its own throwaway Ray head (not the session's), so the crash hits nobody else's Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable.results import ResultStore, default_results_uri
from engine.durable.stored import stored_outputs
from engine.store import Store
from tests.engine.durable.cluster import LocalCluster
from tests.engine.durable.driver import ROOT, no_run_id, start_driver, subprocess_env
from tests.engine.durable.flows import executions

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A separate Ray head, killed and removed at the end."""
    head = LocalCluster()
    try:
        yield head
    finally:
        head.close()


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def resume_cli(settings: Settings, address: str, run_id: str) -> subprocess.CompletedProcess[str]:
    """`rayweave runs resume RUN_ID --stale-after 1 --json`, in a subprocess connected to `address`."""
    command = [sys.executable, "-c", "from serve.cli import main; main()", "runs", "resume", run_id]
    command += ["--stale-after", "1", "--timeout", "90", "--json"]
    env = subprocess_env(
        RAYWEAVE_HOME=str(settings.home), RAYWEAVE_RAY_ADDRESS=address, RAYWEAVE_DATABASE_URL=""
    )
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_whole_cluster_crash_then_resume_finishes_the_run(
    cluster: LocalCluster, settings: Settings, store: Store, log: Path
) -> None:
    cluster.start()
    driver = start_driver(settings.home, log, cluster.address, seconds=2.0)
    try:
        assert driver.stdout is not None
        run_id = driver.stdout.readline().strip()
        assert run_id, no_run_id(settings.home)
        wait_for(lambda: store.node_runs.latest(run_id).get("b") is not None, what="node b to start")
        cluster.kill()
    finally:
        driver.kill()
        driver.wait(10)
    assert executions(log) == {"a": 1}
    assert store.runs.get(run_id).status == "running"

    cluster.start()
    time.sleep(1.2)  # let the dead coordinator's last heartbeat go stale (--stale-after 1)
    done = resume_cli(settings, cluster.address, run_id)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["runs"] == {run_id: "succeeded"}

    assert store.runs.get(run_id).status == "succeeded"
    results = ResultStore(default_results_uri(settings))
    assert stored_outputs(store, results, run_id) == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    attempts = [(r.node_id, r.attempt, r.status) for r in store.node_runs.list(run_id)]
    # b sleeps 2 s and the cluster dies right after b starts, so b is normally interrupted: its attempt is recorded
    # as failed and b runs again. Were the machine slow enough for b to finish and write its result before the
    # kill, the resume takes that result instead (b's first attempt is then recorded as succeeded). Either way b
    # ran to completion exactly once.
    b_attempts = [a for a in attempts if a[0] == "b"]
    assert b_attempts in ([("b", 1, "succeeded")], [("b", 1, "failed"), ("b", 2, "succeeded")])
    assert [a for a in attempts if a[0] != "b"] == [
        ("a", 1, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("run.started") == 2 and events[-1].type == "run.succeeded"
