"""Crash test (2): the driver process that submitted the run is SIGKILLed mid-run; the run still finishes,
and a recovery sweep from this process (which resumes only runs whose coordinator is gone) never runs a
finished node again."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.durable.stored import stored_outputs
from engine.store import Store
from tests.engine.durable.driver import no_run_id, start_driver
from tests.engine.durable.flows import executions

pytestmark = pytest.mark.slow


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_driver_run_finishes_and_each_node_runs_once(
    ray_session: RayConnection, settings: Settings, store: Store, log: Path
) -> None:
    driver = start_driver(settings.home, log, ray_session.address, seconds=1.5)
    try:
        assert driver.stdout is not None
        run_id = driver.stdout.readline().strip()
        assert run_id, no_run_id(settings.home)
        wait_for(lambda: store.node_runs.latest(run_id).get("b") is not None, what="node b to start")
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert executions(log) == {"a": 1}

    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    resumed: list[str] = []
    handles: dict[str, Any] = {}

    def finished() -> bool:
        resumed.extend(recover(runner=runner, stale_after_s=1.0, handles=handles))
        return store.runs.get(run_id).status not in ("queued", "running")

    wait_for(finished, what="the run to finish")
    assert resumed == [], "a sweep never takes over a run whose coordinator is alive"
    for handle in handles.values():
        handle.result(timeout=60)

    assert store.runs.get(run_id).status == "succeeded"
    assert stored_outputs(store, runner.results, run_id) == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    succeeded = {r.node_id for r in store.node_runs.list(run_id) if r.status == "succeeded"}
    assert succeeded == {"a", "b", "c", "d"}
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "run.succeeded"


def test_driver_killed_before_handing_the_run_over_is_resumed(
    ray_session: RayConnection, settings: Settings, store: Store, log: Path
) -> None:
    driver = start_driver(settings.home, log, ray_session.address, seconds=0.0, die_before_start=True)
    assert driver.stdout is not None
    run_id = driver.stdout.readline().strip()
    driver.wait(30)
    assert driver.returncode == -signal.SIGKILL
    assert store.runs.get(run_id).status == "queued" and executions(log) == {}

    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    handles: dict[str, Any] = {}
    # The run never left `queued`: it is taken over once its start-up grace (shortened here) has passed too.
    wait_for(
        lambda: recover(runner=runner, stale_after_s=1.0, start_grace_s=2.0, handles=handles) == [run_id],
        what="the resume",
    )
    assert handles[run_id].result(timeout=60).outputs == {"out": 6}
    assert store.runs.get(run_id).status == "succeeded"
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
