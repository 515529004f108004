"""Run events on Redis: one Stream per run whose entry ids are the events' sequence numbers (`{seq}-0`).

Keys (ADR 024): `run:{id}:events`, a Redis Stream; the run's `last_seq` field counts the numbers handed out.
`anomalies` (a sorted set of the `anomaly.detected` events of every run, members `{seq}:{run}` scored by the
event's time) and `run:{id}:anomalies` (a set of the run's members of it, so deleting the run removes them) are
the index that /metrics and the anomaly list read instead of every event. `notified` (the events of
`NOTIFIED_EVENT_TYPES`, members `{seq}:{type}:{run}` scored by the event's time) and `run:{id}:notified` (the
run's members of it) are likewise the index the webhooks' scans read (`engine.store.redis.webhooks`).
Appending is one Lua script that reserves the numbers and adds the entries, so concurrent appenders never
collide or leave gaps; reading after a sequence is one `XRANGE` from `{after+1}-0`. A Stream keeps its entries in
id order, so numbers a coordinator gives its events must grow: a number at or below the run's last stored one is
refused (`DuplicateEventError`), where a SQL store would still take one that fills a gap.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from engine.execution.events import Event
from engine.store.columns import utcnow
from engine.store.errors import DuplicateEventError, NotFoundError
from engine.store.events import NewEvent
from engine.store.models import NOTIFIED_EVENT_TYPES
from engine.store.redis.base import RedisRepository
from engine.store.redis.codec import dump_json, from_micros, to_micros
from nodes.ids import NodeId, RunId
from nodes.states import EventType

# KEYS: run, stream, anomaly index, the run's anomaly members, notified index, the run's notified members. ARGV:
# 'explicit' or 'store', the run id, then per event: its seq ('' when the store numbers it), how many field pairs
# follow, the pairs (type first, then payload, then at).
_APPEND = (
    "local NOTIFIED = {"
    + ", ".join(f"['{t}'] = true" for t in NOTIFIED_EVENT_TYPES)
    + "}"
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local function add(seq, fields)
  redis.call('XADD', KEYS[2], seq .. '-0', unpack(fields))
  if fields[2] == 'anomaly.detected' then
    redis.call('ZADD', KEYS[3], fields[6], seq .. ':' .. ARGV[2])
    redis.call('SADD', KEYS[4], seq .. ':' .. ARGV[2])
  end
  if NOTIFIED[fields[2]] then
    local member = seq .. ':' .. fields[2] .. ':' .. ARGV[2]
    redis.call('ZADD', KEYS[5], fields[6], member)
    redis.call('SADD', KEYS[6], member)
  end
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seq') or '0')
local events, i = {}, 3
while i <= #ARGV do
  local count = tonumber(ARGV[i + 1])
  local fields = {}
  for j = i + 2, i + 1 + 2 * count do fields[#fields + 1] = ARGV[j] end
  events[#events + 1] = {ARGV[i], fields}
  i = i + 2 + 2 * count
end
if ARGV[1] == 'explicit' then
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local stored = 0
  if #top > 0 then stored = tonumber(string.match(top[1][1], '^(%d+)')) end
  if tonumber(events[1][1]) <= stored then return {'order', stored} end
  for _, event in ipairs(events) do add(event[1], event[2]) end
  local newest = tonumber(events[#events][1])
  if newest > last then redis.call('HSET', KEYS[1], 'last_seq', newest) end
  return {'ok', tonumber(events[1][1])}
end
for n, event in ipairs(events) do add(last + n, event[2]) end
redis.call('HSET', KEYS[1], 'last_seq', last + #events)
return {'ok', last + 1}
"""
)


class RedisEvents(RedisRepository):
    """The persisted event log of each run on Redis; implements `engine.store.protocol.Events`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._append = self.script(_APPEND)

    def append(self, run_id: RunId, events: Sequence[NewEvent]) -> list[int]:
        """Append a batch with gap-free per-run sequence numbers (store-numbered: after `last_seq`; numbered by
        the caller: growing, above the last stored); returns them."""
        if not events:
            return []
        explicit = [e.seq is not None for e in events]
        if any(explicit) and not all(explicit):
            raise ValueError(f"run {run_id!r}: number all events of a batch (seq) or none of them")
        seqs = [int(e.seq) for e in events if e.seq is not None]
        if seqs and (seqs[0] < 1 or any(b <= a for a, b in itertools.pairwise(seqs))):
            raise ValueError(
                f"run {run_id!r}: the sequence numbers of a batch must be positive and growing, got {seqs}"
            )
        now = utcnow()
        args: list[Any] = ["explicit" if seqs else "store", run_id]
        for event in events:
            fields = ["type", str(EventType(event.type)), "payload", dump_json(dict(event.payload))]
            fields += ["at", str(to_micros(event.created_at or now))]
            if event.node_id is not None:
                fields += ["node", event.node_id]
            args += ["" if event.seq is None else event.seq, len(fields) // 2, *fields]
        k = self.keys
        keys = [k("run", run_id), k("run", run_id, "events"), k("anomalies"), k("run", run_id, "anomalies")]
        keys += [k("notified"), k("run", run_id, "notified")]
        outcome = self.reply(self._append(keys=keys, args=args))
        if outcome[0] == "missing":
            raise NotFoundError(f"run {run_id!r} does not exist; create the run before appending events")
        if outcome[0] == "order":
            raise DuplicateEventError(
                f"run {run_id!r} already has events up to sequence {outcome[1]}; number new events after "
                "last_seq() (on Redis a run's sequence numbers only grow)"
            )
        first = int(outcome[1])
        return seqs or list(range(first, first + len(events)))

    def read(self, run_id: RunId, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events after sequence `after`, in order, as the engine's `Event`s."""
        entries = self.client.xrange(self.keys("run", run_id, "events"), f"{after + 1}-0", "+", count=limit)
        return [_event(run_id, entry_id, fields) for entry_id, fields in entries]

    def last_seq(self, run_id: RunId) -> int:
        """The highest sequence number the run has used (0 before its first event)."""
        value = self.client.hget(self.keys("run", run_id), "last_seq")
        if value is None:
            raise NotFoundError(f"run {run_id!r} does not exist")
        return int(value)


def _event(run_id: str, entry_id: str, fields: dict[str, str]) -> Event:
    """The engine `Event` of a stream entry (as `engine.store.events.event_from_row` reads a SQL row)."""
    payload = json.loads(fields["payload"])
    attempt = payload.get("attempt")
    return Event(
        run_id=RunId(run_id),
        seq=int(entry_id.split("-", 1)[0]),
        type=EventType(fields["type"]),
        node=NodeId(fields["node"]) if "node" in fields else None,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        time=from_micros(fields["at"]).timestamp(),
        payload=payload,
    )
