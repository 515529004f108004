"""Crash test (1): the run coordinator actor is killed mid-run; a recovery sweep resumes the run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.actors import find_actor
from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.execution.ray.coordinator import COORDINATOR_NAME
from engine.store import Store
from nodes.states import RunStatus
from tests.engine.durable.flows import chain, executions

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_coordinator_run_is_resumed_without_rerunning_finished_nodes(
    settings: Settings, store: Store, log: Path
) -> None:
    import ray

    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    handle = runner.submit(chain(log, seconds=3.0, slow="b"), {"x": 1})
    run_id = handle.run_id
    wait_for(lambda: store.node_runs.latest(run_id).get("b") is not None, what="node b to start")
    assert executions(log) == {"a": 1}

    ray.kill(find_actor(COORDINATOR_NAME))

    handles: dict[str, Any] = {}
    wait_for(
        lambda: recover(runner=runner, stale_after_s=1.0, handles=handles) == [run_id], what="the resume"
    )
    result = handles[run_id].result(timeout=60)

    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert store.runs.get(run_id).status == "succeeded"
    attempts = [(r.node_id, r.attempt, r.status) for r in store.node_runs.list(run_id)]
    assert attempts == [
        ("a", 1, "succeeded"),
        ("b", 1, "failed"),
        ("b", 2, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.type for e in events]
    assert kinds.count("run.started") == 2 and kinds[-1] == "run.succeeded"
    assert [e.payload.get("resumed") for e in events if e.type == "run.started"] == [None, True]
