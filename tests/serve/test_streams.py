"""A run's event stream after its status became final: the events written after the status (a cancel writes
the status first and its node events later) still reach the subscriber, up to the final event."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine.store import NewEvent, Store, open_store
from nodes.ids import RunId
from nodes.states import EventType, RunStatus
from serve.streams import FINAL_GRACE_S, follow_events


def _running_run(tmp_path: Path) -> tuple[Store, RunId]:
    store = open_store(f"sqlite:///{tmp_path / 'rw.db'}")
    run = store.runs.create(document={"name": "w"}, status=RunStatus.RUNNING).run
    store.events.append(run.id, [NewEvent(EventType.RUN_STARTED), NewEvent(EventType.NODE_STARTED, "a")])
    return store, run.id


async def _collect(store: Store, run_id: RunId) -> list[str]:
    return [e.type async for e in follow_events(store, run_id, 0, poll_s=0.02)]


def test_events_written_after_a_cancel_status_reach_the_stream(tmp_path: Path) -> None:
    store, run_id = _running_run(tmp_path)

    async def scenario() -> list[str]:
        follower = asyncio.create_task(_collect(store, run_id))
        await asyncio.sleep(0.2)
        store.runs.update_status(run_id, RunStatus.CANCELLED)
        await asyncio.sleep(FINAL_GRACE_S / 2)  # the coordinator is still cancelling the nodes
        store.events.append(run_id, [NewEvent(EventType.NODE_CANCELLED, f"n{i}") for i in range(300)])
        await asyncio.sleep(FINAL_GRACE_S / 2)
        store.events.append(run_id, [NewEvent(EventType.RUN_CANCELLED)])
        return await asyncio.wait_for(follower, 10)

    try:
        types = asyncio.run(scenario())
    finally:
        store.close()
    assert types[:2] == [EventType.RUN_STARTED, EventType.NODE_STARTED]
    assert types[2:-1] == [EventType.NODE_CANCELLED] * 300 and types[-1] == EventType.RUN_CANCELLED


def test_a_final_status_without_a_final_event_ends_the_stream_after_the_grace(tmp_path: Path) -> None:
    store, run_id = _running_run(tmp_path)
    store.runs.update_status(run_id, RunStatus.CANCELLED)  # e.g. through the store, by another replica
    started = time.monotonic()
    try:
        types = asyncio.run(asyncio.wait_for(_collect(store, run_id), 10))
    finally:
        store.close()
    assert types == [EventType.RUN_STARTED, EventType.NODE_STARTED]
    assert FINAL_GRACE_S <= time.monotonic() - started < FINAL_GRACE_S + 2
