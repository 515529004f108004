"""Events of runs: appended in batches with gap-free per-run sequence numbers, read back after a sequence.

The store reads events back as the engine's one event model, `engine.execution.events.Event`, through one
function, `event_from_row`; `NewEvent.of` is its inverse for what is appended (the row has no `attempt` column:
the attempt lives in the payload, as the API has always sent it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.execution.events import Event
from engine.store.base import Repository, reserve
from engine.store.columns import utcnow
from engine.store.errors import DuplicateEventError, NotFoundError
from engine.store.models import Event as EventRow
from engine.store.models import Run, table_of
from nodes.ids import NodeId, RunId
from nodes.states import EventType


@dataclass(frozen=True)
class NewEvent:
    """An event to append. Leave `seq` None to let the store number it; a coordinator that numbers events
    itself (to push them live before they are persisted) passes its own `seq` for every event of the batch.
    `NewEvent.of(event)` appends an engine `Event` as it is."""

    type: str
    node_id: NodeId | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    seq: int | None = None

    @classmethod
    def of(cls, event: Event) -> NewEvent:
        """The row of an engine event (its sequence number, time, and its attempt in the payload), so that
        `event_from_row` reads back an equal `Event`."""
        payload = dict(event.payload)
        if event.attempt is not None:
            payload.setdefault("attempt", event.attempt)
        return cls(
            type=str(event.type),
            node_id=event.node,
            payload=payload,
            created_at=datetime.fromtimestamp(event.time, UTC),
            seq=event.seq,
        )

    def read_back(self, run_id: RunId, seq: int) -> Event:
        """The `Event` a read returns for this row once appended to `run_id` as `seq` (its time is needed:
        appended without one, the store's clock stamps it): what a live stream can send without reading it
        back (`serve.streams`). The payload goes through JSON, as the store keeps it."""
        if self.created_at is None:
            raise ValueError(f"run {run_id!r}: event {seq} has no time; only a stored event's time is known")
        payload = json.loads(json.dumps(dict(self.payload)))
        attempt = payload.get("attempt")
        return Event(
            run_id=RunId(run_id),
            seq=seq,
            type=EventType(self.type),
            node=self.node_id,
            attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
            time=self.created_at.timestamp(),
            payload=payload,
        )


def event_from_row(row: EventRow) -> Event:
    """The engine `Event` of a stored event row: the one reader of event rows (every `read` goes through it)."""
    payload = dict(row.payload or {})
    attempt = payload.get("attempt")
    return Event(
        run_id=row.run_id,
        seq=row.seq,
        type=EventType(row.type),
        node=row.node_id,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        time=row.created_at.timestamp(),
        payload=payload,
    )


class EventRepository(Repository):
    """The persisted event log of each run."""

    def append(self, run_id: RunId, events: Sequence[NewEvent]) -> list[int]:
        """Append a batch of events in one transaction and return their sequence numbers.

        The run's `last_seq` counter is advanced with a single conditional UPDATE, which also serializes
        concurrent appenders to the same run; events with explicit numbers must not repeat existing ones
        (`DuplicateEventError`).
        """
        if not events:
            return []
        explicit = [e.seq is not None for e in events]
        if any(explicit) and not all(explicit):
            raise ValueError(f"run {run_id!r}: number all events of a batch (seq) or none of them")
        now = utcnow()
        runs, log = table_of(Run), table_of(EventRow)
        with self.writing() as conn:
            if all(explicit):
                seqs = [int(e.seq) for e in events if e.seq is not None]
                top = max(seqs)
                result = conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == run_id)
                    .values(last_seq=sa.case((runs.c.last_seq < top, top), else_=runs.c.last_seq))
                )
                found = result.rowcount == 1
            else:
                last = reserve(conn, runs, runs.c.id == run_id, len(events))
                found = last is not None
                seqs = list(range(last - len(events) + 1, last + 1)) if last is not None else []
            if not found:
                raise NotFoundError(f"run {run_id!r} does not exist; create the run before appending events")
            rows = [
                {
                    "run_id": run_id,
                    "seq": seq,
                    "type": e.type,
                    "node_id": e.node_id,
                    "payload": dict(e.payload),
                    "created_at": e.created_at or now,
                }
                for seq, e in zip(seqs, events, strict=True)
            ]
            try:
                conn.execute(sa.insert(log), rows)
            except sa.exc.IntegrityError as exc:
                raise DuplicateEventError(
                    f"run {run_id!r} already has an event with one of the sequence numbers {seqs[0]}..{seqs[-1]}; "
                    "number new events after last_seq()"
                ) from exc
        return seqs

    def read(self, run_id: RunId, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with a sequence number greater than `after`, in order (what a reconnecting
        subscriber asks for with the last sequence it saw)."""
        query = (
            select(EventRow)
            .where(EventRow.run_id == run_id, col(EventRow.seq) > after)
            .order_by(col(EventRow.seq))
        )
        if limit is not None:
            query = query.limit(limit)
        with self.reading() as session:
            return [event_from_row(row) for row in session.exec(query)]

    def last_seq(self, run_id: RunId) -> int:
        """The highest sequence number the run has used (0 before its first event)."""
        with self.reading() as session:
            value = session.exec(select(Run.last_seq).where(Run.id == run_id)).first()
        if value is None:
            raise NotFoundError(f"run {run_id!r} does not exist")
        return value
