"""A live stream of a run executed in this process sends the events the in-process bus's notices carry without
reading them back from the store, and reads the store on a gap or a notice without its events: every sequence
number once, in order, each event as the store reads it back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.durable.sink import StoreEventSink
from engine.execution.events import Event
from engine.store import NewEvent, open_store
from nodes.ids import NodeId, RunId
from nodes.states import EventType, RunStatus
from serve.bus import MAX_KEPT_EVENTS, RunNotices, _carried_events
from serve.streams import follow_events


def _event(run_id: RunId, seq: int, kind: EventType, node: str | None = None, **payload: Any) -> Event:
    return Event(
        run_id=run_id,
        seq=seq,
        type=kind,
        node=NodeId(node) if node else None,
        attempt=1 if node else None,
        time=1_800_000_000.123456 + seq,
        payload=payload,
    )


def test_notices_carry_the_events_a_stream_sends_and_a_gap_is_read_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'rw.db'}"
    store = open_store(url)
    run_id = store.runs.create(document={"name": "w"}, status=RunStatus.QUEUED).run.id
    read_seqs: list[int] = []
    read = store.events.read

    def counted(*args: Any, **kwargs: Any) -> list[Event]:
        events = read(*args, **kwargs)
        read_seqs.extend(e.seq for e in events)
        return events

    monkeypatch.setattr(store.events, "read", counted)
    sink = StoreEventSink(url, run_id, heartbeat_s=0)
    # Another writer of the same run (e.g. the analytics' anomaly events): stored without a notice.
    later = StoreEventSink(url, run_id, heartbeat_s=0, seq_offset=1)

    async def scenario() -> list[Event]:
        notices = RunNotices.open("")
        try:
            # Long quick polls: within this test, only notices make the stream look.
            follower = asyncio.create_task(
                _collect(follow_events(store, run_id, 0, poll_s=2.0, max_poll_s=2.0, notices=notices))
            )
            await asyncio.sleep(0.3)
            for batch in (
                [_event(run_id, 1, EventType.RUN_STARTED)],
                [_event(run_id, 2, EventType.NODE_STARTED, "a", type="t/x@1")],
                [
                    _event(
                        run_id, 3, EventType.NODE_LOG, "a", message="tab\there", values=(1, 2), n={3: "x"}
                    ),
                    _event(run_id, 4, EventType.NODE_SUCCEEDED, "a", type="t/x@1"),
                ],
            ):
                await asyncio.to_thread(sink.write, batch)
                await asyncio.sleep(0.05)
            store.events.append(run_id, [NewEvent(EventType.NODE_LOG, NodeId("a"), {"message": "aside"})])
            await asyncio.to_thread(later.write, [_event(run_id, 5, EventType.RUN_SUCCEEDED)])
            return await asyncio.wait_for(follower, 10)
        finally:
            notices.close()

    try:
        sent = asyncio.run(scenario())
        stored = read(run_id)
    finally:
        store.close()
    assert [e.seq for e in sent] == [1, 2, 3, 4, 5, 6]
    # As the store reads them back (tuples as lists, keys as strings, the time to the microsecond).
    assert [e.to_json() for e in sent] == [e.to_json() for e in stored]
    assert sent[2].payload["values"] == [1, 2] and sent[2].payload["n"] == {"3": "x"}
    # The sink's events came with their notices; the one appended without a notice was read, with what followed.
    assert not set(read_seqs) & {1, 2, 3, 4}
    assert {5, 6} <= set(read_seqs)


async def _collect(stream: Any) -> list[Event]:
    return [event async for event in stream]


def test_a_waiter_takes_what_follows_and_sends_the_stream_to_the_store_otherwise() -> None:
    run_id = RunId("r")

    async def scenario() -> None:
        notices = RunNotices.open("")
        try:
            waiter = notices.waiter(run_id)
            events = [_event(run_id, seq, EventType.NODE_LOG, "a") for seq in range(1, 8)]
            waiter._received(events[:3])
            waiter._received(events[3:5])
            assert [e.seq for e in waiter.take(1) or []] == [2, 3, 4, 5]  # 1 was sent already
            assert waiter.take(5) == []  # taken events are forgotten
            waiter._received(events[6:])
            assert waiter.take(5) is None  # 6 is missing: read the store
            waiter._received(events[5:6])
            waiter._received(None)  # a notice without its events (a broker's)
            waiter._received(events[6:])
            assert waiter.take(5) is None
            waiter._received(events[:1] * (MAX_KEPT_EVENTS + 1))  # a stream far behind keeps nothing
            assert waiter.take(0) is None
            assert waiter.take(0) == []
            waiter.close()
        finally:
            notices.close()

    asyncio.run(scenario())
    # What a notice carries is JSON (the bus's contract); anything else than events sends streams to the store.
    event = _event(run_id, 3, EventType.NODE_LOG, "a", message="m")
    assert _carried_events([event.to_json()]) == [event]
    assert _carried_events([{"seq": 1}]) is None and _carried_events("x") is None
