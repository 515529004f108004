"""Following a run's events from the store: every event after a sequence number, live, until the run ends.

Events are read from the store's events table (never from the process that runs the run), so any API replica
serves any subscriber and a reconnect with the last seen sequence number misses nothing and repeats nothing:
sequence numbers are gap-free per run and events are only read in order after `after`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from nodes.states import RunStatus
from serve.runs import event_json, is_final_event

if TYPE_CHECKING:
    from engine.store import Store

#: How many events one store read returns; a long backlog is sent in pages.
PAGE = 500


async def follow_events(
    store: Store, run_id: str, after: int, *, poll_s: float, max_poll_s: float = 0.25
) -> AsyncIterator[dict[str, Any]]:
    """Yield the run's events with `seq > after` in order; return after the run's final event.

    A run whose status is final but has no final event (e.g. cancelled through the store by another
    replica) ends the stream once its events are drained.
    """
    wait = poll_s
    while True:
        rows = await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE)
        for row in rows:
            after = row.seq
            yield event_json(row)
            if is_final_event(row.type):
                return
        if rows:
            wait = poll_s
            continue
        run = await run_in_threadpool(store.runs.get, run_id)
        if run.status in RunStatus.terminal():
            # The status is written before the final event; look once more so that event is not missed.
            await asyncio.sleep(poll_s)
            rows = await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE)
            for row in rows:
                after = row.seq
                yield event_json(row)
                if is_final_event(row.type):
                    return
            if not rows:
                return
            continue
        await asyncio.sleep(wait)
        # Back off while a run is quiet, so idle subscribers cost little; any event resets the delay.
        wait = min(wait * 1.5, max_poll_s)
