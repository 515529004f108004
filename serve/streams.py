"""Following a run's events from the store: every event after a sequence number, live, until the run ends.

Events are the store's: read from its events table (any API replica serves any subscriber), or, for a run in
this process, handed over once stored (below). A reconnect with the last seen sequence number misses nothing and
repeats nothing: sequence numbers are gap-free per run and events are only sent in order after `after`.

With the event bus (`serve.bus.RunNotices`), a stream waits for the run's next notice instead of sleeping
between reads; it still reads the store on a slow safety poll (and on its quick poll when the bus is not a
connected broker), so a lost notice or a dropped bus connection delays events, never loses or repeats them.
A notice of the in-process bus (a run executed in this process) carries its events as the store reads them
back: the stream sends those that follow the last it sent at once, without reading them again, and reads the
store on a gap, a notice without its events, or a timeout. Either way it sends each sequence number once and in
order.
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

#: How long a stream of a run whose status is final waits for more events before it ends without a final event.
FINAL_GRACE_S = 2.0

#: Seconds of silence after which an SSE stream sends a comment line, so that proxies and clients with an idle
#: timeout (nginx's is 60 s) keep a stream open while a run is quiet (a long node, a resume after a crash).
KEEPALIVE_S = 15.0


async def with_keepalive(
    chunks: AsyncIterator[bytes], *, interval_s: float | None = None, comment: bytes = b": keep-alive\n\n"
) -> AsyncIterator[bytes]:
    """`chunks` as they come, with `comment` sent whenever none has come for `interval_s` seconds (default
    `KEEPALIVE_S`). The pending chunk is awaited across keep-alives, never cancelled, so nothing is lost or
    repeated."""
    interval_s = KEEPALIVE_S if interval_s is None else interval_s
    pending: asyncio.Task[bytes] | None = None
    iterator = chunks.__aiter__()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval_s)
            if not done:
                yield comment
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


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
    replica) ends the stream once no event has come for `FINAL_GRACE_S`.
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
    read = True  # read the store this round; after a notice, send the events it carried if they follow
    while True:
        events, read = await _next(store, run_id, after, waiter, read)
        for event in events:
            after = event.seq
            if event.type == EventType.ANOMALY_DETECTED:
                continue  # not a v1 run event (serve.api.v1.schemas.V1_EVENT_TYPES)
            yield event
            if event.type.is_run_final:
                return
        if events:
            wait = poll_s
            if read:
                continue  # a backlog comes in pages: read until nothing more
        elif read:
            run = await run_in_threadpool(store.runs.get, run_id)
            if run.status in RunStatus.terminal():
                # The status is written before the final event, and a cancel writes it before its node events
                # (a thousand of them for a big run, seconds later): drain until the final event, or until
                # nothing more has come for FINAL_GRACE_S (a run finished through the store alone has no final
                # event).
                async for event in _drain(store, run_id, after, poll_s):
                    yield event
                return
        if waiter is not None and notices is not None and notices.live:
            read = not await waiter.wait(notices.safety_poll_s)
            continue
        if waiter is not None:
            read = not await waiter.wait(wait)  # the quick poll's timeout reads the store
        else:
            await asyncio.sleep(wait)
        if not events:
            # Back off while a run is quiet, so idle subscribers cost little; any event resets the delay.
            wait = min(wait * 1.5, max_poll_s)


async def _next(
    store: Store, run_id: RunId, after: int, waiter: NoticeWaiter | None, read: bool
) -> tuple[list[Event], bool]:
    """The events after `after` to send next, and whether they were read from the store: unless `read`, those the
    waiter kept from its notices, when they follow `after` (see the module docstring)."""
    if waiter is not None:
        kept = waiter.take(after)  # a store read now covers whatever it kept: all of it is stored
        waiter.clear()  # a notice from now on means: look again
        if not read and kept is not None:
            return kept, False
    return await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE), True


async def _drain(store: Store, run_id: RunId, after: int, poll_s: float) -> AsyncIterator[Event]:
    """The events of a run whose status is final, up to its final event; ends early once no event has come for
    `FINAL_GRACE_S`."""
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while loop.time() - quiet_since < FINAL_GRACE_S:
        await asyncio.sleep(poll_s)
        events = await run_in_threadpool(store.events.read, run_id, after=after, limit=PAGE)
        if events:
            quiet_since = loop.time()
        for event in events:
            after = event.seq
            if event.type == EventType.ANOMALY_DETECTED:
                continue
            yield event
            if event.type.is_run_final:
                return
