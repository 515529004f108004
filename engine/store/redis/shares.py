"""Workflows shared with users or whole tenants on Redis, and which workflows an audience may see.

Keys (ADR 024): `shares:{workflow}` (a hash: `{subject_type}:{subject_id}` -> `{role}:{created_at}:{created_by}`)
and, the other way round, `shared:{subject_type}:{subject_id}` (a set: the ids of the workflows shared with that
user or tenant). Each change is one Lua script that keeps both in step. As in SQL, a share outlives the soft
deletion of its workflow (the runs of a deleted workflow stay visible to those it was shared with).

`visible_workflow_ids` is the Redis form of `engine.store.shares.visible_workflows` for the workflow listing:
the live workflows a user owns (`wfs:owner:{owner}`), those shared with it or its tenant, and for a whole-tenant
audience those owned by any user of its tenant (`tenant:{tenant}:users`); the run listing asks for deleted
workflows too (`wfs:deleted:{owner}`), whose runs stay visible, as in SQL.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.redis.base import Keys, RedisRepository
from engine.store.redis.codec import to_micros
from engine.store.roles import check_share_role, share_rank
from engine.store.shares import SUBJECT_TYPES, TENANT, USER, Audience, Share

# KEYS: the workflow, its shares, the subject's set. ARGV: field, role, a new share's value, workflow id. A share
# that exists keeps its creation time and author and gets the new role.
_SET = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. string.match(current, '^[^:]*(:.*)$'))
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""

# KEYS: its shares, the subject's set. ARGV: field, workflow id.
_REMOVE = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
return removed
"""

# KEYS: the workflow, its shares. ARGV: prefix, workflow id, then field/value pairs of the shares to keep.
_REPLACE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  redis.call('SREM', ARGV[1] .. ':shared:' .. field, ARGV[2])
end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('SADD', ARGV[1] .. ':shared:' .. ARGV[i], ARGV[2])
end
return 1
"""


class RedisShares(RedisRepository):
    """Shares of workflows on Redis; implements `engine.store.protocol.Shares` as `engine.store.shares` does."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._set = self.script(_SET)
        self._remove = self.script(_REMOVE)
        self._replace = self.script(_REPLACE)

    def set(
        self, workflow_id: str, subject_type: str, subject_id: str, role: str, *, actor: str = ""
    ) -> Share:
        """Share a workflow with a user or a tenant at `role` (again: change the role)."""
        _check_subject(subject_type)
        check_share_role(role)
        field = _field(subject_type, subject_id)
        done = self._set(
            keys=[self.keys("wf", workflow_id), self.keys("shares", workflow_id), self.keys("shared", field)],
            args=[field, role, _value(role, actor), workflow_id],
        )
        if not done:
            raise _no_workflow(workflow_id)
        return Share(workflow_id, subject_type, subject_id, role)

    def remove(self, workflow_id: str, subject_type: str, subject_id: str) -> bool:
        """Stop sharing a workflow with a user or a tenant; False when it was not shared with it."""
        field = _field(subject_type, subject_id)
        keys = [self.keys("shares", workflow_id), self.keys("shared", field)]
        return bool(self._remove(keys=keys, args=[field, workflow_id]))

    def replace(self, workflow_id: str, shares: Iterable[Share], *, actor: str = "") -> builtins.list[Share]:
        """Make `shares` the workflow's only shares, in one script."""
        wanted = builtins.list(shares)
        for share in wanted:
            _check_subject(share.subject_type)
            check_share_role(share.role)
        pairs: builtins.list[str] = []
        for share in wanted:
            pairs += [_field(share.subject_type, share.subject_id), _value(share.role, actor)]
        done = self._replace(
            keys=[self.keys("wf", workflow_id), self.keys("shares", workflow_id)],
            args=[self.keys.prefix, workflow_id, *pairs],
        )
        if not done:
            raise _no_workflow(workflow_id)
        return self.list(workflow_id)

    def list(self, workflow_id: str) -> builtins.list[Share]:
        """The shares of a workflow, in the SQL store's order (by subject type descending, then subject)."""
        stored = self.client.hgetall(self.keys("shares", workflow_id))
        shares = []
        for field, value in stored.items():
            subject_type, subject_id = field.split(":", 1)
            shares.append(Share(workflow_id, subject_type, subject_id, value.split(":", 1)[0]))
        shares.sort(key=lambda share: share.subject_id)
        shares.sort(key=lambda share: share.subject_type, reverse=True)
        return shares

    def role_of(self, workflow_id: str, audience: Audience) -> str | None:
        """The highest role the workflow is shared with the audience at (directly or through its tenant)."""
        values = self.client.hmget(
            self.keys("shares", workflow_id),
            [_field(USER, audience.user_id), _field(TENANT, audience.tenant_id)],
        )
        roles = [value.split(":", 1)[0] for value in values if value is not None]
        return max(roles, key=share_rank, default=None)


def visible_workflow_ids(client: Any, keys: Keys, audience: Audience, *, deleted: bool = False) -> set[str]:
    """The ids of the workflows `audience` may see (`engine.store.shares.visible_workflows`): its own, those
    shared with it or its tenant, and for `whole_tenant` those owned by any user of its tenant. Live ones, and
    deleted ones shared with it (callers intersect with the listing they read); with `deleted`, every deleted
    one too (the runs of a deleted workflow stay visible). Two round trips: the tenant's users (whole tenant
    only), then the shared sets and the owners' indexes, pipelined."""
    owners = [audience.user_id]
    if audience.whole_tenant:
        owners += tenant_user_ids(client, keys, audience.tenant_id)
    pipe = client.pipeline(transaction=False)
    pipe.sunion(
        [keys("shared", _field(USER, audience.user_id)), keys("shared", _field(TENANT, audience.tenant_id))]
    )
    for owner in owners:
        pipe.zrange(keys("wfs", "owner", owner), 0, -1)
        if deleted:
            pipe.zrange(keys("wfs", "deleted", owner), 0, -1)
    found: set[str] = set()
    for ids in pipe.execute():
        found.update(ids)
    return found


def shared_workflow_ids(client: Any, keys: Keys, audience: Audience) -> set[str]:
    """The ids of the workflows shared with the audience's user or its tenant (deleted ones too)."""
    members: set[str] = client.sunion(
        [keys("shared", _field(USER, audience.user_id)), keys("shared", _field(TENANT, audience.tenant_id))]
    )
    return set(members)


def tenant_user_ids(client: Any, keys: Keys, tenant_id: str) -> set[str]:
    """The ids of a tenant's users (`tenant:{tenant}:users`)."""
    return set(client.smembers(keys("tenant", tenant_id, "users")))


def _check_subject(subject_type: str) -> None:
    if subject_type not in SUBJECT_TYPES:
        raise ValueError(f"shares are with a {' or a '.join(SUBJECT_TYPES)}, not {subject_type!r}")


def _field(subject_type: str, subject_id: str) -> str:
    return f"{subject_type}:{subject_id}"


def _value(role: str, actor: str) -> str:
    return f"{role}:{to_micros(utcnow())}:{actor}"


def _no_workflow(workflow_id: str) -> NotFoundError:
    return NotFoundError(f"workflow {workflow_id!r} does not exist; nothing to share")
