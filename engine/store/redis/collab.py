"""Shared (co-edited) workflow documents on Redis: the document's record and its log of Yjs updates.

Keys (ADR 024): `collab:{workflow}` (a hash: `base_version`, `last_seq`, times) and `collab:{workflow}:log` (a
sorted set scored by update number, members `{seq}:{base64 of the update}`: unique, and a compaction can put
the merge back at its number below newer ones, which a Stream's growing ids would not allow), and
`collab:{workflow}:at` (a hash: update number -> when it was written, in microseconds, as the SQL log's
`created_at`: what a copy between stores needs). Every change is one Lua script; numbers come from `HINCRBY` of
`last_seq` in the same script, so they have no gaps.
"""

from __future__ import annotations

import base64
import builtins
from typing import Any

from engine.store.collab import CollabState
from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.redis.base import RedisRepository
from engine.store.redis.codec import to_micros
from nodes.ids import WorkflowId

# KEYS: document, log, update times, workflow record. ARGV: base version, now, the first update (base64).
_START = """
local existing = redis.call('HMGET', KEYS[1], 'base_version', 'last_seq')
if existing[1] then return {tonumber(existing[1]), tonumber(existing[2])} end
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'base_version', ARGV[1], 'last_seq', 1, 'created_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], 1, '1:' .. ARGV[3])
redis.call('HSET', KEYS[3], 1, ARGV[2])
return {tonumber(ARGV[1]), 1}
"""

# KEYS: document, log, update times. ARGV: now, the update (base64). Returns its number, or 0 without a document.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
redis.call('ZADD', KEYS[2], seq, seq .. ':' .. ARGV[2])
redis.call('HSET', KEYS[3], seq, ARGV[1])
return seq
"""

# KEYS: document, log, update times. ARGV: expected base, new base, now, the update (base64; '' for none).
# Returns -1 when the base moved (or there is no document), 0 without an update, else the update's number.
_REBASE = """
if redis.call('HGET', KEYS[1], 'base_version') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'base_version', ARGV[2], 'updated_at', ARGV[3])
if ARGV[4] == '' then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
redis.call('ZADD', KEYS[2], seq, seq .. ':' .. ARGV[4])
redis.call('HSET', KEYS[3], seq, ARGV[3])
return seq
"""

# KEYS: log, update times. ARGV: upto, the merged update (base64), now. Returns how many updates went.
_COMPACT = """
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE')) do
  redis.call('HDEL', KEYS[2], string.match(member, '^(%d+):'))
end
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return removed
"""


class RedisCollab(RedisRepository):
    """The update logs of shared workflow documents on Redis; implements `engine.store.protocol.Collab`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._start = self.script(_START)
        self._append = self.script(_APPEND)
        self._rebase = self.script(_REBASE)
        self._compact = self.script(_COMPACT)

    def get(self, workflow_id: WorkflowId) -> CollabState | None:
        """The shared document's record, or None when the workflow has none yet."""
        base, last = self.client.hmget(self.keys("collab", workflow_id), ["base_version", "last_seq"])
        return None if base is None else CollabState(workflow_id, int(base), int(last))

    def start(self, workflow_id: WorkflowId, *, base_version: int, update: bytes) -> CollabState:
        """Create the shared document with its first update unless one exists (then returns that one)."""
        now = to_micros(utcnow())
        keys = [*self._keys(workflow_id), self.keys("wf", workflow_id)]
        state = self._start(keys=keys, args=[base_version, now, _text(update)])
        if not state:
            raise NotFoundError(
                f"workflow {workflow_id!r} does not exist; create it before sharing its document"
            )
        return CollabState(workflow_id, int(state[0]), int(state[1]))

    def append(self, workflow_id: WorkflowId, update: bytes) -> int:
        """Append one update to a shared document's log; returns its number."""
        seq = int(self._append(keys=self._keys(workflow_id), args=[to_micros(utcnow()), _text(update)]))
        if not seq:
            raise NotFoundError(
                f"workflow {workflow_id!r} has no shared document; open its collaboration room first"
            )
        return seq

    def rebase(
        self, workflow_id: WorkflowId, *, expected_base: int, new_base: int, update: bytes | None
    ) -> int | None:
        """Move the base version if still `expected_base` (appending `update`); the update's number (0 without
        one), or None when another server rebased it first."""
        data = "" if update is None else _text(update)
        args: builtins.list[str | int] = [expected_base, new_base, to_micros(utcnow()), data]
        seq = int(self._rebase(keys=self._keys(workflow_id), args=args))
        return None if seq < 0 else seq

    def read(self, workflow_id: WorkflowId, *, after: int = 0) -> builtins.list[tuple[int, bytes]]:
        """The updates numbered above `after`, in order, as (number, update)."""
        members = self.client.zrange(self._keys(workflow_id)[1], f"({after}", "+inf", byscore=True)
        updates = []
        for member in members:
            seq, data = member.split(":", 1)
            updates.append((int(seq), base64.b64decode(data)))
        return updates

    def compact(self, workflow_id: WorkflowId, *, upto: int, update: bytes) -> int:
        """Replace the updates numbered up to `upto` by `update` (their merge) numbered `upto`; returns how many
        updates went (not counting the one replaced by the merge)."""
        _, log, times = self._keys(workflow_id)
        removed = int(self._compact(keys=[log, times], args=[upto, _text(update), to_micros(utcnow())]))
        return max(removed - 1, 0)

    def delete(self, workflow_id: WorkflowId) -> bool:
        """Forget a workflow's shared document and its log; False when it had none."""
        document, log, times = self._keys(workflow_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(log, times)
        pipe.delete(document)
        return bool(pipe.execute()[1])

    def _keys(self, workflow_id: str) -> builtins.list[str]:
        k = self.keys
        return [k("collab", workflow_id), k("collab", workflow_id, "log"), k("collab", workflow_id, "at")]


def _text(update: bytes) -> str:
    return base64.b64encode(update).decode("ascii")
