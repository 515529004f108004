"""Run events: every state change of a run, numbered per run, delivered in order.

The coordinator (or the in-process executor) is the only writer of a run's `EventLog`; it assigns the
sequence numbers, so a subscriber that remembers the last `seq` it saw can resume with `after=seq` and miss
nothing. Persistence sits behind `EventSink` so the store can write events without the executors knowing it.

`Event` is the one event model of rayweave: the engine emits it, the store returns it
(`engine.store.events.event_from_row`, the one reader of stored rows), and the API, its WebSocket and
Server-Sent Events streams and the HTTP client exchange its one JSON form (`Event.to_json`/`Event.from_json`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.jsonlimits import sanitized
from nodes.ids import NodeId, RunId
from nodes.states import EventType

__all__ = ["Event", "EventLog", "EventSink"]


@dataclass(frozen=True, slots=True)
class Event:
    """One state change of a run. `seq` starts at 1 and has no gaps within a run.

    `time` is seconds since the Unix epoch (UTC), to the microsecond (what the store keeps). An event of a
    node attempt has its `attempt`, which its `payload` carries too (the API has always sent it there).
    """

    run_id: RunId
    seq: int
    type: EventType
    node: NodeId | None = None
    attempt: int | None = None
    time: float = 0.0
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON form the API, its streams and the client use: `{run_id, seq, type, node, attempt, time,
        payload}`; the payload is `engine.jsonlimits.sanitized` (what is not JSON is shown as its `repr`, what
        cannot be stored or sent, such as a NUL character, is replaced), so it always serializes."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "type": str(self.type),
            "node": self.node,
            "attempt": self.attempt,
            "time": self.time,
            "payload": sanitized(dict(self.payload)),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        """The event of its JSON form (`to_json`); `ValueError` names an unknown event type."""
        attempt = data.get("attempt")
        node = data.get("node")
        return cls(
            run_id=RunId(str(data["run_id"])),
            seq=int(data["seq"]),
            type=EventType(data["type"]),
            node=NodeId(node) if node is not None else None,
            attempt=int(attempt) if attempt is not None else None,
            time=float(data.get("time") or 0.0),
            payload=dict(data.get("payload") or {}),
        )


def event_time(at: float | None = None) -> float:
    """`at` (now when None) to the microsecond, the resolution the store keeps, so an event reads back equal."""
    return round(time.time() if at is None else at, 6)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


class EventSink(Protocol):
    """Where a run's events are persisted (the store implements it); called in order, from one thread."""

    def write(self, events: Sequence[Event]) -> None:
        """Persist `events` (consecutive, in sequence order)."""


class EventLog:
    """The ordered events of one run, with per-run sequence numbers.

    Not thread-safe by itself: its owner (the coordinator's event loop, or the in-process executor under its
    lock) serializes appends.
    """

    def __init__(self, run_id: RunId, sink: EventSink | None = None) -> None:
        self.run_id = run_id
        self._events: list[Event] = []
        self._sink = sink

    def append(
        self,
        type: EventType,
        node: NodeId | None = None,
        attempt: int | None = None,
        payload: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> Event:
        """Record a new event with the next sequence number and return it (its payload carries `attempt`)."""
        data = dict(payload or {})
        if attempt is not None:
            data.setdefault("attempt", attempt)
        event = Event(
            run_id=self.run_id,
            seq=len(self._events) + 1,
            type=type,
            node=node,
            attempt=attempt,
            time=event_time(at),
            payload=data,
        )
        self._events.append(event)
        if self._sink is not None:
            self._sink.write((event,))
        return event

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        return len(self._events)

    def after(self, seq: int, limit: int | None = None) -> list[Event]:
        """The events with a sequence number greater than `seq`, oldest first."""
        start = max(seq, 0)
        end = None if limit is None else start + limit
        return self._events[start:end]

    @property
    def finished(self) -> bool:
        """True once the run's final event was recorded."""
        return bool(self._events) and self._events[-1].type.is_run_final
