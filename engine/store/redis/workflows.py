"""Workflows and their immutable versions on Redis: one hash per workflow, one per version, sorted sets to list.

Keys: `wf:{id}` (the `Workflow` record), `wf:{id}:v:{n}` (version n), `wfs` and `wfs:owner:{owner}` (the ids of
live workflows scored by their update time), `wfs:deleted:{owner}` (the owner's deleted workflows, whose runs
stay visible to whoever may see them), `wfs:ids` (every workflow's id, deleted ones too, all scored 0 so
they sort by id: the bulk export's pages and the analytics' run scope). A save is one Lua script that compares
the latest version number and writes the next version, so of two saves on the same version exactly one wins.
"""

from __future__ import annotations

import builtins
from typing import Any

from engine.store.canonical import content_hash, document_to_dict
from engine.store.columns import utcnow
from engine.store.diff import WorkflowDiff, diff_documents
from engine.store.errors import NotFoundError, VersionConflictError
from engine.store.models import Workflow, WorkflowVersion
from engine.store.redis.base import RedisRepository, flat
from engine.store.redis.codec import Codec, to_micros
from engine.store.shares import Audience
from engine.store.workflows import WorkflowCreation
from nodes.ids import WorkflowId

# KEYS: workflow, version 1, live index, owner index, every workflow's id (deleted ones too). ARGV: id, updated
# score, n, then n field/value pairs of the workflow, then those of the version.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[3])
local wf, v = {}, {}
for i = 4, 3 + 2 * n do wf[#wf + 1] = ARGV[i] end
for i = 4 + 2 * n, #ARGV do v[#v + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(wf))
redis.call('HSET', KEYS[2], unpack(v))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
return 1
"""

# KEYS: workflow, next version, live index, owner index. ARGV: id, expected version, updated_at text, score,
# then the version's field/value pairs. Returns {0, latest} on a conflict, {-1} when missing or deleted.
_SAVE = """
local state = redis.call('HMGET', KEYS[1], 'latest_version', 'deleted_at')
if not state[1] or state[2] then return {-1} end
if tonumber(state[1]) ~= tonumber(ARGV[2]) then return {0, tonumber(state[1])} end
local v = {}
for i = 5, #ARGV do v[#v + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'latest_version', tonumber(ARGV[2]) + 1, 'updated_at', ARGV[3])
redis.call('HSET', KEYS[2], unpack(v))
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return {1}
"""

# KEYS: workflow, live index. ARGV: id, deleted_at text, the owner index and the owner's deleted index (each
# without the owner, which is found from the record).
_DELETE = """
local state = redis.call('HMGET', KEYS[1], 'owner', 'deleted_at')
if not state[1] or state[2] then return 0 end
redis.call('HSET', KEYS[1], 'deleted_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[3] .. state[1], ARGV[1])
redis.call('ZADD', ARGV[4] .. state[1], 0, ARGV[1])
return 1
"""


class RedisWorkflows(WorkflowCreation, RedisRepository):
    """Stored workflows on Redis; implements `engine.store.protocol.Workflows`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(Workflow)
        self.versions = Codec(WorkflowVersion)
        self._create = self.script(_CREATE)
        self._save = self.script(_SAVE)
        self._delete = self.script(_DELETE)

    def _store_new(self, wf: Workflow, version: WorkflowVersion) -> WorkflowVersion:
        fields = flat(self.codec.dump(wf))
        created = self._create(
            keys=[
                self._key(wf.id),
                self._key(wf.id, 1),
                self.keys("wfs"),
                self.keys("wfs", "owner", wf.owner),
                self.keys("wfs", "ids"),
            ],
            args=[
                wf.id,
                to_micros(wf.created_at),
                len(fields) // 2,
                *fields,
                *flat(self.versions.dump(version)),
            ],
        )
        if not created:
            raise ValueError(f"workflow {wf.id!r} exists already; create it without an id to get a new one")
        return version

    def save(
        self,
        workflow_id: WorkflowId,
        document: Any,
        *,
        expected_version: int,
        author: str = "",
        message: str = "",
    ) -> WorkflowVersion:
        """Store `document` as the next version if the latest is still `expected_version` (else
        `VersionConflictError`); `NotFoundError` when the workflow does not exist or was deleted."""
        doc = document_to_dict(document)
        now = utcnow()
        version = WorkflowVersion(
            workflow_id=workflow_id,
            version=expected_version + 1,
            document=doc,
            content_hash=content_hash(doc),
            author=author,
            message=message,
            created_at=now,
        )
        owner = self.client.hget(self._key(workflow_id), "owner")
        outcome = self.reply(
            self._save(
                keys=[
                    self._key(workflow_id),
                    self._key(workflow_id, expected_version + 1),
                    self.keys("wfs"),
                    self.keys("wfs", "owner", owner or ""),
                ],
                args=[
                    workflow_id,
                    expected_version,
                    self.codec.field("updated_at", now),
                    to_micros(now),
                    *flat(self.versions.dump(version)),
                ],
            )
        )
        if outcome[0] == -1:
            raise _missing(workflow_id)
        if outcome[0] == 0:
            raise VersionConflictError(workflow_id, expected_version, int(outcome[1]))
        return version

    def get(self, workflow_id: WorkflowId) -> Workflow:
        """The workflow record; `NotFoundError` when missing or deleted."""
        return self._live(workflow_id)

    def latest(self, workflow_id: WorkflowId) -> WorkflowVersion:
        """The latest version of a workflow."""
        return self.get_version(workflow_id, self._live(workflow_id).latest_version)

    def get_version(self, workflow_id: WorkflowId, version: int) -> WorkflowVersion:
        """One version (readable after the workflow was deleted: runs refer to it)."""
        stored = self.client.hgetall(self._key(workflow_id, version))
        if not stored:
            raise NotFoundError(
                f"workflow {workflow_id!r} has no version {version}; its history lists the versions it has"
            )
        return self.versions.load(stored)

    def history(self, workflow_id: WorkflowId) -> builtins.list[WorkflowVersion]:
        """Every version, newest first."""
        latest = self._live(workflow_id).latest_version
        pipe = self.client.pipeline(transaction=False)
        for number in range(latest, 0, -1):
            pipe.hgetall(self._key(workflow_id, number))
        return [self.versions.load(stored) for stored in pipe.execute() if stored]

    def list(
        self,
        *,
        owner: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        visible_to: Audience | None = None,
    ) -> builtins.list[Workflow]:
        """Workflows not deleted, most recently updated first (then by id). Reads every id of the index it
        filters (all live workflows, or the owner's) and their names: workflows number in the thousands, not
        the millions. `visible_to` keeps those the audience may see (`engine.store.redis.shares`)."""
        index = self.keys("wfs") if owner is None else self.keys("wfs", "owner", owner)
        scored = self.client.zrange(index, 0, -1, withscores=True)
        ordered = sorted(scored, key=lambda item: (-item[1], item[0]))
        ids = [member for member, _ in ordered]
        if visible_to is not None:
            from engine.store.redis.shares import visible_workflow_ids

            visible = visible_workflow_ids(self.client, self.keys, visible_to)
            ids = [wf_id for wf_id in ids if wf_id in visible]
        if name is not None and ids:
            names = self._hmget_each(ids, "name")
            ids = [wf_id for wf_id, got in zip(ids, names, strict=True) if got == name]
        page = ids[offset : offset + limit]
        pipe = self.client.pipeline(transaction=False)
        for wf_id in page:
            pipe.hgetall(self._key(wf_id))
        return [self.codec.load(stored) for stored in pipe.execute() if stored]

    def delete(self, workflow_id: WorkflowId) -> None:
        """Hide a workflow from listings; its versions stay for the runs that used them."""
        done = self._delete(
            keys=[self._key(workflow_id), self.keys("wfs")],
            args=[
                workflow_id,
                self.codec.field("deleted_at", utcnow()),
                self.keys("wfs", "owner", ""),
                self.keys("wfs", "deleted", ""),
            ],
        )
        if not done:
            raise _missing(workflow_id)

    def diff(self, workflow_id: WorkflowId, old_version: int, new_version: int) -> WorkflowDiff:
        """The structural difference between two versions."""
        old = self.get_version(workflow_id, old_version)
        new = self.get_version(workflow_id, new_version)
        return diff_documents(old.document, new.document)

    def _key(self, workflow_id: str, version: int | None = None) -> str:
        return self.keys("wf", workflow_id) if version is None else self.keys("wf", workflow_id, "v", version)

    def _live(self, workflow_id: str) -> Workflow:
        stored = self.client.hgetall(self._key(workflow_id))
        if not stored or "deleted_at" in stored:
            raise _missing(workflow_id)
        return self.codec.load(stored)

    def _hmget_each(self, ids: builtins.list[str], field: str) -> builtins.list[str | None]:
        pipe = self.client.pipeline(transaction=False)
        for wf_id in ids:
            pipe.hget(self._key(wf_id), field)
        values: builtins.list[str | None] = pipe.execute()
        return values


def _missing(workflow_id: str) -> NotFoundError:
    return NotFoundError(
        f"workflow {workflow_id!r} does not exist (or was deleted); list workflows to find it"
    )
