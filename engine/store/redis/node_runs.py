"""Node attempts on Redis: one hash per run holding every attempt of its nodes.

Keys (ADR 024): `run:{id}:attempts` (field `["node",attempt]` in compact JSON -> the attempt's other fields, a
JSON object of the codec's texts) and `run:{id}:last` (node -> its highest attempt number, for `attempt=None`).
A run has hundreds of attempts, not millions, so reading them is one `HGETALL`; sorting is done here.

`stats:attempts` (a hash: `{len}:{node type}:{status}:{measure}` -> an integer) holds what `/metrics` reports of
every attempt stored, by node type and status: how many (`n`), how many finished (`finished`), their total time
(`us`, microseconds) and cache hits (`hits`). Each script that writes an attempt adds its figures (or, replacing
one, the difference) in the same step, and deleting a run subtracts those of its attempts, so a scrape reads one
hash however long the history.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.store.columns import utcnow
from engine.store.errors import DuplicateAttemptError, NotFoundError
from engine.store.models import NodeRun
from engine.store.redis.base import RedisRepository
from engine.store.redis.codec import Codec, dump_json
from nodes.ids import NodeId, NodeTypeId, RunId
from nodes.states import NodeStatus

_KEY_FIELDS = ("run_id", "node_id", "attempt")

#: The measures of `stats:attempts` (see the module docstring).
MEASURES = ("n", "finished", "us", "hits")

# Lua: `take(stats, field, amount)` adds `amount` to a figure, removing it when it is 0 then; `subtract(stats,
# values)` takes the figures of the stored attempts `values` (their JSON texts) out of
# `stats` (as `figures` computes them); a figure back at 0 is removed, so a store whose runs are all deleted holds
# no figures.
TAKE = """
local function take(stats, field, amount)
  if redis.call('HINCRBY', stats, field, amount) == 0 then redis.call('HDEL', stats, field) end
end
"""
SUBTRACT = (
    TAKE
    + """
local function subtract(stats, values)
  for _, raw in ipairs(values) do
    local a = cjson.decode(raw)
    local kind = a.node_type or ''
    local group = string.len(kind) .. ':' .. kind .. ':' .. a.status .. ':'
    take(stats, group .. 'n', -1)
    if a.started_at and a.finished_at then
      take(stats, group .. 'finished', -1)
      take(stats, group .. 'us', tonumber(a.started_at) - tonumber(a.finished_at))
    end
    if a.cache_hit == 'true' then take(stats, group .. 'hits', -1) end
  end
end
"""
)

# KEYS: run, attempts, last attempts, figures. ARGV: node, its field's head (`["node",`), attempt ('' for the next),
# the attempt's value, then the figures it adds (field, amount pairs).
_START = (
    TAKE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local attempt = last + 1
if ARGV[3] ~= '' then attempt = tonumber(ARGV[3]) end
if redis.call('HSETNX', KEYS[2], ARGV[2] .. attempt .. ']', ARGV[4]) == 0 then return {'duplicate', attempt} end
if attempt > last then redis.call('HSET', KEYS[3], ARGV[1], attempt) end
for i = 5, #ARGV, 2 do take(KEYS[4], ARGV[i], ARGV[i + 1]) end
return {'ok', attempt}
"""
)

# KEYS: run, attempts, last attempts of each run of the batch, then the figures. ARGV: how many figure pairs, the
# pairs (field, amount: what the batch adds), then per attempt: run's position (0-based), node, attempt, field,
# value. Checks the whole batch before writing any of it.
_RECORD_MANY = (
    TAKE
    + """
local first = 2 + 2 * tonumber(ARGV[1])
local seen = {}
for i = first, #ARGV, 5 do
  local base = 3 * tonumber(ARGV[i])
  if redis.call('EXISTS', KEYS[base + 1]) == 0 then return {'missing', ARGV[i]} end
  local id = KEYS[base + 2] .. ARGV[i + 3]
  if seen[id] or redis.call('HEXISTS', KEYS[base + 2], ARGV[i + 3]) == 1 then return {'duplicate', ARGV[i]} end
  seen[id] = true
end
for i = 2, first - 1, 2 do take(KEYS[#KEYS], ARGV[i], ARGV[i + 1]) end
for i = first, #ARGV, 5 do
  local base = 3 * tonumber(ARGV[i])
  redis.call('HSET', KEYS[base + 2], ARGV[i + 3], ARGV[i + 4])
  local last = tonumber(redis.call('HGET', KEYS[base + 3], ARGV[i + 1]) or '0')
  if tonumber(ARGV[i + 2]) > last then redis.call('HSET', KEYS[base + 3], ARGV[i + 1], ARGV[i + 2]) end
end
return {'ok'}
"""
)

# KEYS: attempts, figures. ARGV: field, the value read, the new value, then the change of the figures (field,
# amount pairs). Compare-and-set.
_REPLACE = (
    TAKE
    + """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
for i = 4, #ARGV, 2 do take(KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
)


def _field(node_id: str, attempt: int) -> str:
    return dump_json([node_id, attempt])


class RedisNodeRuns(RedisRepository):
    """Attempts of nodes within runs on Redis; implements `engine.store.protocol.NodeRuns`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(NodeRun)
        self._start = self.script(_START)
        self._record_many = self.script(_RECORD_MANY)
        self._replace = self.script(_REPLACE)

    def start(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        node_type: NodeTypeId = NodeTypeId(""),
        attempt: int | None = None,
        status: str = NodeStatus.RUNNING,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record the start of an attempt (`attempt=None`: the next number after the node's highest)."""
        _check_status(status)
        value = self._value({"node_type": node_type, "status": status, "started_at": at or utcnow()})
        outcome = self.reply(
            self._start(
                keys=[*self._run_keys(run_id), self.keys("stats", "attempts")],
                args=[
                    node_id,
                    _field(node_id, 0)[: -len("0]")],
                    "" if attempt is None else attempt,
                    value,
                    *change(None, value),
                ],
            )
        )
        if outcome[0] == "missing":
            raise _no_run(run_id)
        if outcome[0] == "duplicate":
            raise _duplicate(run_id, node_id, int(outcome[1]))
        return self._load(run_id, _field(node_id, int(outcome[1])), value)

    def finish(
        self,
        run_id: RunId,
        node_id: NodeId,
        attempt: int,
        *,
        status: str,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        cache_hit: bool | None = None,
        at: datetime | None = None,
    ) -> NodeRun:
        """Record how an attempt ended (a compare-and-set of the attempt's value, retried if it changed)."""
        _check_status(status)
        key, field = self.keys("run", run_id, "attempts"), _field(node_id, attempt)
        changes: dict[str, Any] = {"status": status, "finished_at": at or utcnow()}
        if error is not None:
            changes["error"] = json.loads(json.dumps(dict(error)))
        if result_location is not None:
            changes["result_location"] = result_location
        if cache_hit is not None:
            changes["cache_hit"] = cache_hit
        for _ in range(20):
            old = self.client.hget(key, field)
            if old is None:
                raise NotFoundError(
                    f"run {run_id!r} has no attempt {attempt} of node {node_id!r}; call start() before finish()"
                )
            new = dump_json({**json.loads(old), **self.codec.fields(changes)})
            stats = self.keys("stats", "attempts")
            if self._replace(keys=[key, stats], args=[field, old, new, *change(old, new)]):
                return self._load(run_id, field, new)
        raise RuntimeError(
            f"run {run_id!r}: attempt {attempt} of node {node_id!r} kept changing; finish it again"
        )

    def record(
        self,
        run_id: RunId,
        node_id: NodeId,
        *,
        attempt: int,
        status: str,
        node_type: NodeTypeId = NodeTypeId(""),
        cache_hit: bool = False,
        error: Mapping[str, Any] | None = None,
        result_location: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> NodeRun:
        """Record a complete attempt in one step (e.g. a cache hit, or a skipped node)."""
        row = {
            "run_id": run_id,
            "node_id": node_id,
            "attempt": attempt,
            "status": status,
            "node_type": node_type,
            "cache_hit": cache_hit,
            "error": error,
            "result_location": result_location,
            "started_at": started_at,
            "finished_at": finished_at,
        }
        self.record_many([row])
        return self._one(run_id, node_id, attempt)

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record many complete attempts at once, all or none (one script checks the batch, then writes it);
        returns how many."""
        runs: dict[str, int] = {}
        args: builtins.list[Any] = []
        added: dict[str, int] = {}
        batch = builtins.list(rows)
        for row in batch:
            run_id, node_id, attempt = str(row["run_id"]), str(row["node_id"]), int(row["attempt"])
            _check_status(str(row["status"]))
            values = {"node_type": "", "cache_hit": False, **row}
            if values.get("error") is not None:
                values["error"] = json.loads(json.dumps(dict(values["error"])))
            position = runs.setdefault(run_id, len(runs))
            value = self._value(values)
            args += [position, node_id, attempt, _field(node_id, attempt), value]
            for name, amount in figures(value).items():
                added[name] = added.get(name, 0) + amount
        if not batch:
            return 0
        keys = [key for run_id in runs for key in self._run_keys(RunId(run_id))]
        keys.append(self.keys("stats", "attempts"))
        outcome = self.reply(self._record_many(keys=keys, args=[len(added), *flat_ints(added), *args]))
        if outcome[0] != "ok":
            run_id = builtins.list(runs)[int(outcome[1])]
            if outcome[0] == "missing":
                raise _no_run(run_id)
            raise DuplicateAttemptError(
                f"run {run_id!r} already has one of the attempts of this batch (or the batch repeats one); "
                "nothing of the batch was recorded"
            )
        return len(batch)

    def list(self, run_id: RunId) -> builtins.list[NodeRun]:
        """Every attempt of a run, by node id then attempt."""
        stored = self.client.hgetall(self.keys("run", run_id, "attempts"))
        rows = [self._load(run_id, field, value) for field, value in stored.items()]
        return sorted(rows, key=lambda row: (row.node_id, row.attempt))

    def _one(self, run_id: RunId, node_id: NodeId, attempt: int) -> NodeRun:
        """One attempt; `NotFoundError` when it was not recorded."""
        field = _field(node_id, attempt)
        value = self.client.hget(self.keys("run", run_id, "attempts"), field)
        if value is None:
            raise NotFoundError(f"run {run_id!r} has no attempt {attempt} of node {node_id!r}")
        return self._load(run_id, field, value)

    def latest(self, run_id: RunId) -> dict[NodeId, NodeRun]:
        """The last attempt of each node of a run."""
        return {row.node_id: row for row in self.list(run_id)}

    def succeeded(
        self, run_id: RunId, statuses: Collection[str] = NodeStatus.successes()
    ) -> dict[NodeId, NodeRun]:
        """The nodes of a run whose outputs are available (an attempt in `statuses`), with that attempt."""
        return {row.node_id: row for row in self.list(run_id) if row.status in statuses}

    def _run_keys(self, run_id: RunId) -> builtins.list[str]:
        return [
            self.keys("run", run_id),
            self.keys("run", run_id, "attempts"),
            self.keys("run", run_id, "last"),
        ]

    def _value(self, values: Mapping[str, Any]) -> str:
        return dump_json(self.codec.fields({k: v for k, v in values.items() if k not in _KEY_FIELDS}))

    def _load(self, run_id: str, field: str, value: str) -> NodeRun:
        node_id, attempt = json.loads(field)
        return self.codec.load(
            {**json.loads(value), "run_id": run_id, "node_id": node_id, "attempt": str(attempt)}
        )


def figures(value: str | Mapping[str, Any] | None) -> dict[str, int]:
    """What a stored attempt (its value's JSON text, or that decoded) counts in `stats:attempts`: one attempt of
    its node type and status, finished with its time if it has both times, a cache hit if it was one."""
    if value is None:
        return {}
    stored = json.loads(value) if isinstance(value, str) else value
    kind = str(stored.get("node_type") or "")
    group = f"{len(kind.encode())}:{kind}:{stored['status']}:"
    found = {group + "n": 1}
    started, finished = stored.get("started_at"), stored.get("finished_at")
    if started is not None and finished is not None:
        found[group + "finished"] = 1
        found[group + "us"] = int(finished) - int(started)
    if stored.get("cache_hit") == "true":
        found[group + "hits"] = 1
    return found


def change(old: str | Mapping[str, Any] | None, new: str | Mapping[str, Any] | None) -> builtins.list[Any]:
    """The `stats:attempts` changes of replacing stored attempt `old` by `new`, as field, amount pairs."""
    before, after = figures(old), figures(new)
    amounts = {name: after.get(name, 0) - before.get(name, 0) for name in {*before, *after}}
    return flat_ints({name: amount for name, amount in amounts.items() if amount})


def flat_ints(amounts: Mapping[str, int]) -> builtins.list[Any]:
    """`{field: amount}` as `[field, amount, ...]` (a script's ARGV)."""
    return [item for pair in amounts.items() for item in pair]


def _check_status(status: str) -> None:
    if status not in set(NodeStatus):
        raise ValueError(f"unknown node status {status!r}; one of {sorted(map(str, NodeStatus))}")


def _no_run(run_id: str) -> NotFoundError:
    return NotFoundError(f"run {run_id!r} does not exist; create the run before recording its nodes")


def _duplicate(run_id: str, node_id: str, attempt: int) -> DuplicateAttemptError:
    return DuplicateAttemptError(
        f"run {run_id!r} already has attempt {attempt} of node {node_id!r}; start a new attempt with "
        "attempt=None to take the next number"
    )
