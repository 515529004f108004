"""Following a run's events from the store: every event after a sequence number, live, until the run ends.

Events are read from the store's events table (never from the process that runs the run), so any API replica
serves any subscriber and a reconnect with the last seen sequence number misses nothing and repeats nothing:
sequence numbers are gap-free per run and events are only read in order after `after`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from nodes.ids import RunId
from nodes.states import EventType, RunStatus

if TYPE_CHECKING:
    from engine.execution.events import Event
    from engine.store import Store

#: How many events one store read returns; a long backlog is sent in pages.
PAGE = 500


async def follow_events(
    store: Store, run_id: RunId, after: int, *, poll_s: float, max_poll_s: float = 0.25
) -> AsyncIterator[Event]:
    """Yield the run's events with `seq > after` in order; return after the run's final event. The routes send
    each as `Event.to_json()`, the one JSON form of an event.

    A run whose status is final but has no final event (e.g. cancelled through the store by another
    replica) ends the stream once its events are drained.
    """
    wait = poll_s
    while True:
        events = await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE)
        for event in events:
            after = event.seq
            if event.type == EventType.ANOMALY_DETECTED:
                continue  # not a v1 run event (serve.api.v1.schemas.V1_EVENT_TYPES)
            yield event
            if event.type.is_run_final:
                return
        if events:
            wait = poll_s
            continue
        run = await run_in_threadpool(store.runs.get, run_id)
        if run.status in RunStatus.terminal():
            # The status is written before the final event; look once more so that event is not missed.
            await asyncio.sleep(poll_s)
            events = await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE)
            for event in events:
                after = event.seq
                if event.type == EventType.ANOMALY_DETECTED:
                    continue
                yield event
                if event.type.is_run_final:
                    return
            if not events:
                return
            continue
        await asyncio.sleep(wait)
        # Back off while a run is quiet, so idle subscribers cost little; any event resets the delay.
        wait = min(wait * 1.5, max_poll_s)
