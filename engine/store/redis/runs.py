"""Runs on Redis: idempotent creation under a quota, listings by sorted sets, status changes, heartbeats, and the
recovery sweep's stale runs and claims.

Keys (ADR 024): `run:{id}` (the `Run` record, a hash); `idem:{len}:{owner}:{key}` (the run an idempotency key
created); sorted sets of run ids scored by creation time (microseconds) for the listings: `runs` (all),
`runs:wf:{workflow}`, `runs:owner:{owner}`, `runs:status:{status}`, `runs:wfst:{status}:{workflow}`, and
`runs:active` (queued and running runs, for the recovery sweep); `runs:active:{owner}` (a set: the owner's
queued and running runs, which the quota counts); `runs:ids` (every run id, all scored 0 so they sort by id: the
bulk export's pages) and `runs:finished` (runs scored by `finished_at`: the incremental analytics export). Every change that moves a run between these is one Lua script,
so the indexes never disagree with the records.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.store.canonical import content_hash, document_to_dict
from engine.store.columns import utcnow
from engine.store.errors import IdempotencyConflictError, NotFoundError, RunQuotaExceededError, RunStateError
from engine.store.models import Run, WorkflowVersion
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, to_micros
from engine.store.redis.node_runs import SUBTRACT
from engine.store.redis.visibility import RunVisibility
from engine.store.runs import CreatedRun, RunPage, _decode_cursor, _encode_cursor
from engine.store.shares import Audience
from nodes.ids import RunId, WorkflowId, new_run_id
from nodes.states import RunStatus

#: Scanning a listing's index: ids read per round trip.
_CHUNK = 200

# Moves run `id` (created at `score`, of workflow `wf` and `owner`) from status `old` to `new` in every index.
_MOVE = """
local function active(status) return status == 'queued' or status == 'running' end
local function move(prefix, id, score, wf, owner, old, new)
  if old == new then return end
  redis.call('ZREM', prefix .. ':runs:status:' .. old, id)
  redis.call('ZADD', prefix .. ':runs:status:' .. new, score, id)
  if wf then
    redis.call('ZREM', prefix .. ':runs:wfst:' .. old .. ':' .. wf, id)
    redis.call('ZADD', prefix .. ':runs:wfst:' .. new .. ':' .. wf, score, id)
  end
  if active(old) and not active(new) then
    redis.call('ZREM', prefix .. ':runs:active', id)
    redis.call('SREM', prefix .. ':runs:active:' .. owner, id)
  elseif active(new) and not active(old) then
    redis.call('ZADD', prefix .. ':runs:active', score, id)
    redis.call('SADD', prefix .. ':runs:active:' .. owner, id)
  end
end
"""

# KEYS: run, idempotency key, owner's active set, active index, ids index, then the listings' indexes to add the
# run to.
# ARGV: id, use the key ('1'/'0'), quota ('' for none), score, active ('1'/'0'), then the record's field pairs.
_CREATE = """
if ARGV[2] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'exists', existing} end
end
if ARGV[3] ~= '' then
  local active = redis.call('SCARD', KEYS[3])
  if active >= tonumber(ARGV[3]) then return {'quota', active} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[2] == '1' then redis.call('SET', KEYS[2], ARGV[1]) end
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
end
redis.call('ZADD', KEYS[5], 0, ARGV[1])
for i = 6, #KEYS do redis.call('ZADD', KEYS[i], ARGV[4], ARGV[1]) end
return {'created'}
"""

# KEYS: run. ARGV: id, prefix, new status, '\n'-framed statuses it may move from ('' for any), started_at to set
# if unset ('' for none), then field pairs to set.
_UPDATE = (
    _MOVE
    + """
local cur = redis.call('HMGET', KEYS[1], 'status', 'workflow_id', 'owner', 'created_at')
if not cur[1] then return {'missing'} end
if ARGV[4] ~= '' and not string.find(ARGV[4], '\\n' .. cur[1] .. '\\n', 1, true) then
  return {'state', cur[1]}
end
if ARGV[5] ~= '' then redis.call('HSETNX', KEYS[1], 'started_at', ARGV[5]) end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
move(ARGV[2], ARGV[1], cur[4], cur[2], cur[3], cur[1], ARGV[3])
local finished = redis.call('HGET', KEYS[1], 'finished_at')
if finished then redis.call('ZADD', ARGV[2] .. ':runs:finished', finished, ARGV[1]) end
return {'ok', redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: run. ARGV: heartbeat_at, then coordinator (optional).
_HEARTBEAT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1])
if ARGV[2] then redis.call('HSET', KEYS[1], 'coordinator', ARGV[2]) end
return 1
"""

# ARGV: prefix, heartbeat_at, coordinator, run ids. Returns the ids of the cancelled ones.
_HEARTBEAT_MANY = """
local cancelled = {}
for i = 4, #ARGV do
  local key = ARGV[1] .. ':run:' .. ARGV[i]
  local status = redis.call('HGET', key, 'status')
  if status then
    redis.call('HSET', key, 'heartbeat_at', ARGV[2], 'coordinator', ARGV[3])
    if status == 'cancelled' then cancelled[#cancelled + 1] = ARGV[i] end
  end
end
return cancelled
"""

# KEYS: run. ARGV: id, prefix, coordinator, now, a running run's last sign of life before this is stale, a
# queued run's likewise.
_CLAIM = (
    _MOVE
    + """
local cur = redis.call('HMGET', KEYS[1], 'status', 'workflow_id', 'owner', 'created_at', 'heartbeat_at',
  'updated_at')
if not cur[1] then return 0 end
local last = tonumber(cur[5] or cur[6])
local stale = (cur[1] == 'running' and last < tonumber(ARGV[5]))
  or (cur[1] == 'queued' and last < tonumber(ARGV[6]))
if not stale then return 0 end
redis.call('HSET', KEYS[1], 'coordinator', ARGV[3], 'heartbeat_at', ARGV[4], 'updated_at', ARGV[4],
  'status', 'queued')
move(ARGV[2], ARGV[1], cur[4], cur[2], cur[3], cur[1], 'queued')
return 1
"""
)

# KEYS: run, its attempts, its attempt counters, its event stream. ARGV: id, prefix. The run's attempts leave the
# node figures of /metrics (`engine.store.redis.node_runs`).
_DELETE = (
    SUBTRACT
    + """
local cur = redis.call('HMGET', KEYS[1], 'status', 'workflow_id', 'owner', 'idempotency_key')
if not cur[1] then return 0 end
local prefix, id = ARGV[2], ARGV[1]
subtract(prefix .. ':stats:attempts', redis.call('HVALS', KEYS[2]))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
for _, index in ipairs({':runs', ':runs:owner:' .. cur[3], ':runs:status:' .. cur[1], ':runs:active',
    ':runs:ids', ':runs:finished'}) do
  redis.call('ZREM', prefix .. index, id)
end
local anomalies = prefix .. ':run:' .. id .. ':anomalies'
for _, member in ipairs(redis.call('SMEMBERS', anomalies)) do redis.call('ZREM', prefix .. ':anomalies', member) end
redis.call('DEL', anomalies)
local notified = prefix .. ':run:' .. id .. ':notified'
for _, member in ipairs(redis.call('SMEMBERS', notified)) do redis.call('ZREM', prefix .. ':notified', member) end
redis.call('DEL', notified)
redis.call('SREM', prefix .. ':runs:active:' .. cur[3], id)
if cur[2] then
  redis.call('ZREM', prefix .. ':runs:wf:' .. cur[2], id)
  redis.call('ZREM', prefix .. ':runs:wfst:' .. cur[1] .. ':' .. cur[2], id)
end
if cur[4] then
  redis.call('DEL', prefix .. ':idem:' .. string.len(cur[3]) .. ':' .. cur[3] .. ':' .. cur[4])
end
return 1
"""
)


class RedisRuns(RedisRepository):
    """Runs on Redis; implements `engine.store.protocol.Runs`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(Run)
        self._create = self.script(_CREATE)
        self._update = self.script(_UPDATE)
        self._heartbeat = self.script(_HEARTBEAT)
        self._heartbeat_many = self.script(_HEARTBEAT_MANY)
        self._claim = self.script(_CLAIM)
        self._delete = self.script(_DELETE)

    def create(
        self,
        *,
        workflow_id: WorkflowId | None = None,
        workflow_version: int | None = None,
        document: Any = None,
        inputs: Mapping[str, Any] | None = None,
        owner: str = "local",
        idempotency_key: str | None = None,
        run_id: RunId | None = None,
        status: str = RunStatus.QUEUED,
        plugin_versions: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        heartbeat: bool = False,
        max_active: int | None = None,
    ) -> CreatedRun:
        """Record a new run (or return the one an idempotency key already created), as the SQL store does: the
        key's check, the quota's count and the insert are one Lua script, so racing creations with one key make
        one run and concurrent creations never exceed `max_active`."""
        if workflow_id is None and document is None:
            raise ValueError("a run needs a workflow_id (a stored workflow) or a document (inline)")
        _check_status(status)
        inputs_json = json.loads(json.dumps(dict(inputs or {})))
        inline = document_to_dict(document) if document is not None else None
        doc_hash = content_hash(inline) if inline is not None else ""
        request_hash = content_hash(
            {
                "workflow_id": workflow_id,
                "version": workflow_version,
                "document": doc_hash,
                "inputs": inputs_json,
            }
        )
        if idempotency_key is not None:
            existing = self.get_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return CreatedRun(_check_same(existing, request_hash), False)
        version = workflow_version
        if workflow_id is not None:
            resolved = self._resolve_version(workflow_id, workflow_version)
            version, doc_hash = resolved.version, resolved.content_hash
        now = at or utcnow()
        run = Run(
            id=run_id or new_run_id(),
            workflow_id=workflow_id,
            workflow_version=version,
            document=inline,
            document_hash=doc_hash,
            inputs=inputs_json,
            status=status,
            owner=owner,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            plugin_versions=json.loads(json.dumps(dict(plugin_versions or {}))),
            created_at=now,
            updated_at=now,
            heartbeat_at=now if heartbeat else None,
        )
        k = self.keys
        indexes = [k("runs"), k("runs", "owner", owner), k("runs", "status", status)]
        if workflow_id is not None:
            indexes += [k("runs", "wf", workflow_id), k("runs", "wfst", status, workflow_id)]
        outcome = self.reply(
            self._create(
                keys=[
                    k("run", run.id),
                    self._idem_key(owner, idempotency_key or ""),
                    k("runs", "active", owner),
                    k("runs", "active"),
                    k("runs", "ids"),
                    *indexes,
                ],
                args=[
                    run.id,
                    "1" if idempotency_key is not None else "0",
                    "" if max_active is None else max_active,
                    to_micros(now),
                    "1" if status in RunStatus.active() else "0",
                    *flat(self.codec.dump(run)),
                ],
            )
        )
        if outcome[0] == "exists":
            return CreatedRun(_check_same(self.get(RunId(outcome[1])), request_hash), False)
        if outcome[0] == "quota":
            raise RunQuotaExceededError(owner, int(outcome[1]), int(max_active or 0))
        if outcome[0] == "duplicate":
            raise ValueError(f"run {run.id!r} exists already; create the run without an id to get a new one")
        return CreatedRun(run, True)

    def get(self, run_id: RunId) -> Run:
        """One run; `NotFoundError` when missing."""
        stored = self.client.hgetall(self.keys("run", run_id))
        if not stored:
            raise NotFoundError(f"run {run_id!r} does not exist; list runs to find its id")
        return self.codec.load(stored)

    def get_by_idempotency_key(self, owner: str, key: str) -> Run | None:
        """The run an owner created with an idempotency key, if any."""
        run_id = self.client.get(self._idem_key(owner, key))
        if run_id is None:
            return None
        stored = self.client.hgetall(self.keys("run", run_id))
        return self.codec.load(stored) if stored else None

    def list(
        self,
        *,
        workflow_id: WorkflowId | None = None,
        status: str | Collection[str] | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        visible_to: Audience | None = None,
    ) -> RunPage:
        """Runs matching every filter, newest first (then by id, descending), `limit` at a time with the SQL
        store's cursors. Reads the most selective index the filters allow (workflow and one status, workflow,
        one status, owner, or all runs) backwards from the cursor, and checks the other filters on each run.

        `visible_to` (`engine.store.shares.visible_runs`: own runs, runs of workflows the audience may see,
        deleted ones included, and for a whole tenant every run started in it) reads the union of the indexes
        of what the audience may see (its owners' and its workflows' runs) when they hold fewer runs than the
        filters' index, and otherwise checks each run of that index, so a page costs about what the audience
        sees or what the filters select, whichever is less."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        scope = None if visible_to is None else RunVisibility(self, visible_to)
        statuses = None if status is None else {status} if isinstance(status, str) else set(status)
        index, checks = self._index(workflow_id, statuses, owner)
        top: int | None = None if created_before is None else to_micros(created_before) - 1
        tie: tuple[int, str] | None = None
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            tie = (to_micros(at), last_id)
            top = tie[0] if top is None else min(top, tie[0])
        bottom: int | str = "-inf" if created_after is None else to_micros(created_after) + 1
        wanted = {"workflow_id": workflow_id, "owner": owner}
        high: int | str = "+inf" if top is None else top
        chunks = self._scan(index, high, bottom)
        if scope is not None and (narrow := scope.narrower(index)) is not None:
            # Every run of the union is visible; the filters its indexes do not cover are checked run by run.
            chunks, checks = self._merged(narrow, high, bottom), ["workflow_id", "status", "owner"]
            scope = None
        found: builtins.list[str] = []
        for chunk in chunks:
            candidates = [
                member for member, score in chunk if tie is None or int(score) != tie[0] or member < tie[1]
            ]
            matched = self._matching(candidates, checks, wanted, statuses)
            found += matched if scope is None else scope.visible(matched)
            if len(found) > limit:
                break
        items = self._load_each(found[: limit + 1])
        more = len(items) > limit
        items = items[:limit]
        return RunPage(items, _encode_cursor(items[-1]) if more else None)

    def update_status(
        self,
        run_id: RunId,
        status: str,
        *,
        only_from: Collection[str] | None = None,
        error: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        skipped_outputs: Sequence[str] | None = None,
        coordinator: str | None = None,
        at: datetime | None = None,
    ) -> Run:
        """Change a run's status (compare-and-set with `only_from`, else `RunStateError`); `running` sets
        `started_at` once, a terminal status sets `finished_at`."""
        _check_status(status)
        now = at or utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now, "coordinator": coordinator}
        if status in RunStatus.terminal():
            values["finished_at"] = now
        if error is not None:
            values["error"] = json.loads(json.dumps(dict(error)))
        if outputs is not None:
            values["outputs"] = json.loads(json.dumps(dict(outputs)))
        if skipped_outputs is not None:
            values["skipped_outputs"] = [str(name) for name in skipped_outputs]
        allowed = "" if only_from is None else "\n" + "\n".join(map(str, only_from)) + "\n"
        outcome = self.reply(
            self._update(
                keys=[self.keys("run", run_id)],
                args=[
                    run_id,
                    self.keys.prefix,
                    status,
                    allowed,
                    to_micros(now) if status == RunStatus.RUNNING else "",
                    *flat(self.codec.fields(values)),
                ],
            )
        )
        if outcome[0] == "missing":
            raise NotFoundError(f"run {run_id!r} does not exist; list runs to find its id")
        if outcome[0] == "state":
            raise RunStateError(
                f"run {run_id!r} is {outcome[1]!r}, not one of {sorted(map(str, only_from or []))}; "
                f"it was not moved to {str(status)!r} (reload the run and decide again)"
            )
        return self.codec.load(as_dict(outcome[1]))

    def heartbeat(self, run_id: RunId, coordinator: str | None = None, *, at: datetime | None = None) -> None:
        """Record that the run's coordinator is alive."""
        args: builtins.list[Any] = [to_micros(at or utcnow())]
        if coordinator is not None:
            args.append(coordinator)
        if not self._heartbeat(keys=[self.keys("run", run_id)], args=args):
            raise NotFoundError(f"run {run_id!r} does not exist; cannot record a heartbeat for it")

    def heartbeat_many(self, run_ids: Collection[RunId], coordinator: str) -> builtins.list[RunId]:
        """One heartbeat by `coordinator` for each of `run_ids` in one script; returns those cancelled in the
        store. Ids of runs that no longer exist are ignored."""
        ids = builtins.list(run_ids)
        if not ids:
            return []
        cancelled = self._heartbeat_many(args=[self.keys.prefix, to_micros(utcnow()), coordinator, *ids])
        return [RunId(run_id) for run_id in self.reply(cancelled)]

    def stale(
        self,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        limit: int = 1000,
        queued_grace: timedelta | None = None,
        after: tuple[datetime, RunId] | None = None,
    ) -> builtins.list[Run]:
        """Active runs whose coordinator stopped beating, oldest first (by creation, then id), at most `limit`;
        `after` continues after a page's last `(created_at, id)`. Reads `runs:active`, the queued and running
        runs only."""
        running_before, queued_before = _thresholds(now or utcnow(), older_than, queued_grace)
        bottom: int | str = "-inf" if after is None else to_micros(after[0])
        found: builtins.list[Run] = []
        offset = 0
        while len(found) < limit:
            chunk = self.client.zrange(
                self.keys("runs", "active"), bottom, "+inf", byscore=True, offset=offset, num=_CHUNK,
                withscores=True,
            )  # fmt: skip
            offset += len(chunk)
            ids = [
                member
                for member, score in chunk
                if after is None or int(score) != bottom or member > after[1]
            ]
            for run in self._load_each(ids):
                last = run.heartbeat_at or run.updated_at
                if (run.status == RunStatus.RUNNING and to_micros(last) < running_before) or (
                    run.status == RunStatus.QUEUED and to_micros(last) < queued_before
                ):
                    found.append(run)
            if len(chunk) < _CHUNK:
                break
        return found[:limit]

    def claim(
        self,
        run_id: RunId,
        coordinator: str,
        older_than: timedelta,
        *,
        now: datetime | None = None,
        queued_grace: timedelta | None = None,
    ) -> bool:
        """Atomically take over a stale run (one Lua script checks and takes it); exactly one of several
        concurrent claimers wins. The claimed run is `queued` again with a fresh heartbeat."""
        now = now or utcnow()
        running_before, queued_before = _thresholds(now, older_than, queued_grace)
        won = self._claim(
            keys=[self.keys("run", run_id)],
            args=[run_id, self.keys.prefix, coordinator, to_micros(now), running_before, queued_before],
        )
        return bool(won)

    def delete(self, run_id: RunId) -> None:
        """Delete a run with its node runs, events and index entries."""
        k = self.keys
        done = self._delete(
            keys=[k("run", run_id), k("run", run_id, "attempts"), k("run", run_id, "last"), k("run", run_id, "events")],
            args=[run_id, k.prefix],
        )  # fmt: skip
        if not done:
            raise NotFoundError(f"run {run_id!r} does not exist; list runs to find its id")

    def _scan(self, index: str, top: int | str, bottom: int | str) -> Iterator[builtins.list[Any]]:
        """`(id, score)` pairs of `index` from `top` down to `bottom`, newest first, `_CHUNK` at a time."""
        offset = 0
        while True:
            chunk = self.client.zrange(
                index, top, bottom, desc=True, byscore=True, offset=offset, num=_CHUNK, withscores=True
            )
            offset += len(chunk)
            yield chunk
            if len(chunk) < _CHUNK:
                return

    def _merged(
        self, indexes: builtins.list[str], top: int | str, bottom: int | str
    ) -> Iterator[builtins.list[Any]]:
        """`_scan` of the union of `indexes` (each read whole between the bounds, in one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, top, bottom, desc=True, byscore=True, withscores=True)
        scores: dict[str, float] = {}
        for chunk in pipe.execute():
            scores.update(chunk)
        ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
        for start in range(0, max(len(ordered), 1), _CHUNK):
            yield ordered[start : start + _CHUNK]

    def _idem_key(self, owner: str, key: str) -> str:
        return self.keys("idem", self.keys.pair(owner, key))

    def _index(
        self, workflow_id: str | None, statuses: set[str] | None, owner: str | None
    ) -> tuple[str, builtins.list[str]]:
        """The index a listing reads, and the fields left to check on each run."""
        k = self.keys
        one = next(iter(statuses)) if statuses is not None and len(statuses) == 1 else None
        if workflow_id is not None and one is not None:
            return k("runs", "wfst", one, workflow_id), ["owner"]
        if workflow_id is not None:
            return k("runs", "wf", workflow_id), ["status", "owner"]
        if one is not None:
            return k("runs", "status", one), ["owner"]
        if owner is not None:
            return k("runs", "owner", owner), ["status"]
        return k("runs"), ["status"]

    def _matching(
        self,
        ids: builtins.list[str],
        checks: builtins.list[str],
        wanted: dict[str, str | None],
        statuses: set[str] | None,
    ) -> builtins.list[str]:
        checks = [f for f in checks if (statuses is not None if f == "status" else wanted.get(f) is not None)]
        if not checks or not ids:
            return ids
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.hmget(self.keys("run", run_id), checks)
        kept = []
        for run_id, values in zip(ids, pipe.execute(), strict=True):
            got = dict(zip(checks, values, strict=True))
            if all(
                (got[f] in statuses) if f == "status" and statuses is not None else got[f] == wanted[f]
                for f in checks
            ):
                kept.append(run_id)
        return kept

    def _load_each(self, ids: builtins.list[str]) -> builtins.list[Run]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(self.keys("run", run_id))
        return [self.codec.load(stored) for stored in pipe.execute() if stored]

    def _resolve_version(self, workflow_id: WorkflowId, version: int | None) -> WorkflowVersion:
        if version is None:
            state = self.client.hmget(self.keys("wf", workflow_id), ["latest_version", "deleted_at"])
            if state[0] is None or state[1] is not None:
                raise NotFoundError(
                    f"workflow {workflow_id!r} does not exist (or was deleted); cannot run it"
                )
            version = int(state[0])
        stored = self.client.hmget(self.keys("wf", workflow_id, "v", version), ["content_hash"])
        if stored[0] is None:
            raise NotFoundError(f"workflow {workflow_id!r} has no version {version}; cannot run it")
        return WorkflowVersion(
            workflow_id=workflow_id, version=version, document={}, content_hash=stored[0], created_at=utcnow()
        )


def _check_status(status: str) -> None:
    if status not in set(RunStatus):
        raise ValueError(f"unknown run status {status!r}; one of {sorted(map(str, RunStatus))}")


def _check_same(run: Run, request_hash: str) -> Run:
    if run.request_hash != request_hash:
        raise IdempotencyConflictError(run.owner, run.idempotency_key or "", run.id)
    return run


def _thresholds(now: datetime, older_than: timedelta, queued_grace: timedelta | None) -> tuple[int, int]:
    """The last sign of life before which a running run, and a queued one, is stale (microseconds)."""
    grace = max(older_than, queued_grace or older_than)
    return to_micros(now - older_than), to_micros(now - grace)
