"""The audit log on Redis: one hash per entry, numbered 1, 2, 3, ... and hash-chained (`engine.store.audit_chain`).

Keys (ADR 024): `audit:{id}` (the `AuditEntry` record), `audit:head` (a hash: the newest entry's `id` and
`hash`, the chain's head), `audit` (entry ids scored by id: chain order), `audit:at` (ids scored by the entry's
time in microseconds: where `since` starts), and the listings' filters `audit:actor:{actor}`,
`audit:action:{action}`, `audit:rid:{resource_id}` (ids scored by id).

The chain needs SHA-256 over a canonical JSON form, which a Lua script cannot compute the way Python does, so the
appender computes the hash and one script does nothing but order: it writes the entry only if the head is still
the one the hash was chained to (a compare-and-set), else it answers with the new head and the appender chains
to that and tries again. Of concurrent appenders exactly one wins each round, so the chain never forks.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from engine.store.audit import BATCH, new_entry
from engine.store.audit_chain import GENESIS, ChainVerifying, entry_hash, hashed_record
from engine.store.errors import AuditChainError
from engine.store.models import AuditEntry
from engine.store.redis.base import RedisRepository, flat
from engine.store.redis.codec import Codec, to_micros

#: Rounds an append may lose to concurrent appenders before it gives up (each round one of them wins).
_TRIES = 1000
#: Ids read per round trip when a filter's index is scanned.
_CHUNK = 500

# KEYS: head, entry, chain index, time index, actor index, action index, resource index.
# ARGV: the prev_hash the caller chained to, id, at (microseconds), hash, then the record's field pairs.
_APPEND = f"""
local head = redis.call('HMGET', KEYS[1], 'id', 'hash')
local last, prev = tonumber(head[1] or '0'), head[2] or '{GENESIS}'
if prev ~= ARGV[1] or last + 1 ~= tonumber(ARGV[2]) then return {{'moved', tostring(last), prev}} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {{'taken'}} end
local fields = {{}}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
for i = 5, 7 do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[2]) end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'hash', ARGV[4])
return {{'ok'}}
"""


class RedisAudit(ChainVerifying, RedisRepository):
    """Audit entries on Redis: appended, never updated or deleted; implements `engine.store.protocol.Audit`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(AuditEntry)
        self._append = self.script(_APPEND)

    def append(
        self,
        actor: str,
        action: str,
        *,
        resource_type: str = "",
        resource_id: str = "",
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Record that `actor` did `action` on a resource, with its outcome (`ok`, `denied`, `error`), chained
        to the last entry. Appends are serialized by the head's compare-and-set (module docstring): one that
        lost a race chains to the winner's entry and tries again."""
        entry = new_entry(actor, action, resource_type, resource_id, outcome, details, at)
        k = self.keys
        indexes = [
            k("audit"),
            k("audit", "at"),
            k("audit", "actor", entry.actor),
            k("audit", "action", entry.action),
        ]
        indexes.append(k("audit", "rid", entry.resource_id))
        head = self.client.hmget(k("audit", "head"), ["id", "hash"])
        last, prev = int(head[0] or 0), head[1] or GENESIS
        for _ in range(_TRIES):
            entry.id, entry.prev_hash = last + 1, prev
            entry.hash = entry_hash(prev, hashed_record(entry))
            outcome_ = self.reply(
                self._append(
                    keys=[k("audit", "head"), k("audit", entry.id), *indexes],
                    args=[prev, entry.id, to_micros(entry.at), entry.hash, *flat(self.codec.dump(entry))],
                )
            )
            if outcome_[0] == "ok":
                return entry
            if outcome_[0] == "taken":
                raise AuditChainError(
                    f"audit entry {entry.id} exists already while the chain's head says {last}: the audit keys "
                    f"under {k.prefix}:audit were changed behind the store's back; run `rayweave audit verify`"
                )
            last, prev = int(outcome_[1]), str(outcome_[2])
        raise AuditChainError(
            f"an audit append lost {_TRIES} races in a row to concurrent appenders; try again (is something "
            "appending in a loop?)"
        )

    def entries(self, *, since: datetime | None = None, batch: int = BATCH) -> Iterator[AuditEntry]:
        """Every entry in chain order (oldest first), read `batch` at a time; `since` starts at that time."""
        after = 0
        if since is not None:
            first = self._first_id_since(since)
            if first is None:
                return
            after = first - 1
        while True:
            ids = self.client.zrange(
                self.keys("audit"), f"({after}", "+inf", byscore=True, offset=0, num=batch
            )
            rows = self._load_each(ids)
            yield from (row for row in rows if since is None or row.at >= since)
            if len(ids) < batch:
                return
            after = int(ids[-1])

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Entries matching the filters, newest first; page with `before_id` = the last id seen. Reads the
        smallest index of those the filters name (actor, action, resource id; else the whole chain) backwards
        from `before_id`, and checks the other filters on each entry."""
        if limit < 1:
            return []
        k = self.keys
        candidates = [k("audit")]
        if actor is not None:
            candidates.append(k("audit", "actor", actor))
        if action is not None:
            candidates.append(k("audit", "action", action))
        if resource_id is not None:
            candidates.append(k("audit", "rid", resource_id))
        index = candidates[0]
        if len(candidates) > 1:
            pipe = self.client.pipeline(transaction=False)
            for key in candidates[1:]:
                pipe.zcard(key)
            index = min(zip(pipe.execute(), candidates[1:], strict=True))[1]
        bottom = 0
        if since is not None:
            first = self._first_id_since(since)
            if first is None:
                return []
            bottom = first
        wanted = {
            "actor": actor,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
        }
        top: int | str = "+inf" if before_id is None else f"({before_id}"
        found: builtins.list[AuditEntry] = []
        while len(found) < limit:
            ids = self.client.zrange(index, top, bottom, desc=True, byscore=True, offset=0, num=_CHUNK)
            for row in self._load_each(ids):
                if (since is None or row.at >= since) and all(
                    value is None or getattr(row, name) == value for name, value in wanted.items()
                ):
                    found.append(row)
            if len(ids) < _CHUNK:
                break
            top = f"({ids[-1]}"
        return found[:limit]

    def _first_id_since(self, since: datetime) -> int | None:
        """The lowest id of an entry at or after `since` (None when there is none): entries are numbered in the
        order they were appended, but an entry's time is the caller's to give, so every id of the time index
        from `since` on is looked at."""
        lowest: int | None = None
        offset = 0
        while True:
            ids = self.client.zrange(
                self.keys("audit", "at"),
                to_micros(since),
                "+inf",
                byscore=True,
                offset=offset,
                num=_CHUNK * 10,
            )
            if ids:
                least = min(map(int, ids))
                lowest = least if lowest is None else min(lowest, least)
            if len(ids) < _CHUNK * 10:
                return lowest
            offset += len(ids)

    def _load_each(self, ids: builtins.list[str]) -> builtins.list[AuditEntry]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hgetall(self.keys("audit", entry_id))
        return [self.codec.load(stored) for stored in pipe.execute() if stored]
