"""Following a run's events from the store: every event after a sequence number, live, until the run ends.

Events are read from the store's events table (never from the process that runs the run), so any API replica
serves any subscriber and a reconnect with the last seen sequence number misses nothing and repeats nothing:
sequence numbers are gap-free per run and events are only read in order after `after`.

With the event bus (`serve.bus.RunNotices`), a stream waits for the run's next notice instead of sleeping
between reads; it still reads the store on a slow safety poll (and on its quick poll when the bus is not a
connected broker), so a lost notice or a dropped bus connection delays events, never loses or repeats them.
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
    from serve.bus import NoticeWaiter, RunNotices

#: How many events one store read returns; a long backlog is sent in pages.
PAGE = 500


async def follow_events(
    store: Store,
    run_id: RunId,
    after: int,
    *,
    poll_s: float,
    max_poll_s: float = 0.25,
    notices: RunNotices | None = None,
) -> AsyncIterator[Event]:
    """Yield the run's events with `seq > after` in order; return after the run's final event. The routes send
    each as `Event.to_json()`, the one JSON form of an event. `notices`: wake on the event bus's notices of the
    run (see the module docstring).

    A run whose status is final but has no final event (e.g. cancelled through the store by another
    replica) ends the stream once its events are drained.
    """
    waiter = notices.waiter(run_id) if notices is not None else None
    try:
        async for event in _follow(store, run_id, after, poll_s, max_poll_s, notices, waiter):
            yield event
    finally:
        if waiter is not None:
            waiter.close()


async def _follow(
    store: Store,
    run_id: RunId,
    after: int,
    poll_s: float,
    max_poll_s: float,
    notices: RunNotices | None,
    waiter: NoticeWaiter | None,
) -> AsyncIterator[Event]:
    wait = poll_s
    while True:
        if waiter is not None:
            waiter.clear()  # a notice from now on means: read again
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
        if waiter is not None and notices is not None and notices.live:
            await waiter.wait(notices.safety_poll_s)
            continue
        if waiter is not None:
            await waiter.wait(wait)
        else:
            await asyncio.sleep(wait)
        # Back off while a run is quiet, so idle subscribers cost little; any event resets the delay.
        wait = min(wait * 1.5, max_poll_s)
