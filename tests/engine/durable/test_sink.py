"""The store sink's heartbeat and store-driven cancellation (no Ray)."""

from __future__ import annotations

import time
from pathlib import Path

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.durable.heartbeat import Heartbeats
from engine.store import Store
from engine.workflow import Workflow
from tests.engine.durable import flows


def test_a_running_run_keeps_heartbeating(settings: Settings, store: Store, log: Path) -> None:
    runner = DurableRunner(settings, store=store, executor="local", heartbeat_s=0.1)
    wf = Workflow("slow")
    wf.output("out", wf.add("n", flows.slow_inc, x=1, params={"log": str(log), "seconds": 0.6}))
    handle = runner.submit(wf)
    time.sleep(0.2)
    first = store.runs.get(handle.run_id).heartbeat_at
    time.sleep(0.3)
    second = store.runs.get(handle.run_id).heartbeat_at
    assert first is not None and second is not None and second > first
    assert handle.result(timeout=10).outputs == {"out": 2}
    time.sleep(0.25)  # a beat already under way when the run ended may still land
    ended = store.runs.get(handle.run_id).heartbeat_at
    time.sleep(0.3)
    assert store.runs.get(handle.run_id).heartbeat_at == ended, "a finished run does not heartbeat any more"


def test_one_beat_covers_every_run_and_reports_the_cancelled(store: Store) -> None:
    ids = [store.runs.create(document={"name": f"w{i}"}, status="running").run.id for i in range(3)]
    store.runs.update_status(ids[1], "cancelled")
    beats = Heartbeats(store, 60.0, "here:1")
    assert beats.beat(ids) == [ids[1]]
    assert {store.runs.get(i).coordinator for i in ids} == {"here:1"}
    assert all(store.runs.get(i).heartbeat_at is not None for i in ids)
