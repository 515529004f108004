"""Reports on Redis: the metrics snapshot, the analytics export's history reads, run scopes and anomalies.

Reads only indexes (ADR 024): runs by status are the sizes of the `runs:status:{s}` sorted sets and node attempts
by type and status the `stats:attempts` counters the attempt scripts keep; histories walk `runs:ids` (every run,
by id), `runs` (by creation time) or `runs:finished` (by finish time) in chunks, with one pipelined round trip per
chunk; anomalies are the `anomalies` sorted set. The events an export needs of each attempt are filtered inside
Redis by a Lua script over one chunk of runs at a time (a failed attempt's traceback never crosses the network),
so the server is never blocked for long and memory never grows with the store.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from engine.store.models import Run
from engine.store.redis.base import RedisRepository
from engine.store.redis.codec import Codec, from_micros, to_micros
from engine.store.reports import (
    BATCH_ROWS,
    ID_CHUNK,
    FinishedNodeRunRow,
    MetricsSnapshot,
    NodeRunFigures,
    NodeRunHistoryRow,
    RunHistoryRow,
    RunScope,
)
from engine.store.shares import Audience
from nodes.states import EventType, RunStatus

#: Runs per script call or pipeline (a script over 100 runs of 100 attempts holds the server for a few ms).
RUN_CHUNK = 100

_RUN_FIELDS = [
    "workflow_id",
    "workflow_version",
    "owner",
    "status",
    "created_at",
    "started_at",
    "finished_at",
]

# ARGV: prefix, the event types wanted ('\n'-framed), run ids. Per wanted event of those runs: run id, node, type,
# then the payload's level, attempt, failed_attempt, cpu_s, memory_bytes, output_bytes ('' when absent), so a
# failed attempt's traceback never leaves the server.
_ATTEMPT_EVENTS = """
local function text(v)
  if v == nil or v == cjson.null or type(v) == 'table' then return '' end
  if type(v) == 'number' then return string.format('%.17g', v) end
  return tostring(v)
end
local out = {}
for i = 3, #ARGV do
  for _, entry in ipairs(redis.call('XRANGE', ARGV[1] .. ':run:' .. ARGV[i] .. ':events', '-', '+')) do
    local f = {}
    for n = 1, #entry[2], 2 do f[entry[2][n]] = entry[2][n + 1] end
    if string.find(ARGV[2], '\\n' .. f.type .. '\\n', 1, true) then
      local p = cjson.decode(f.payload)
      for _, v in ipairs({ARGV[i], f.node or '', f.type, text(p.level), text(p.attempt), text(p.failed_attempt),
          text(p.cpu_s), text(p.memory_bytes), text(p.output_bytes)}) do
        out[#out + 1] = v
      end
    end
  end
end
return out
"""


class RedisReports(RedisRepository):
    """Aggregates for metrics and bulk reads for analytics on Redis; implements `engine.store.protocol.Reports`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.runs = Codec(Run)
        self._attempt_events = self.script(_ATTEMPT_EVENTS)

    def metrics_snapshot(self) -> MetricsSnapshot:
        """Runs by status (the sizes of the status indexes) and node attempts by node type and status (the
        `stats:attempts` hash the attempt scripts keep: `engine.store.redis.node_runs`), in one round trip whose
        size does not grow with the history."""
        statuses = [str(status) for status in RunStatus]
        pipe = self.client.pipeline(transaction=False)
        for status in statuses:
            pipe.zcard(self.keys("runs", "status", status))
        pipe.hgetall(self.keys("stats", "attempts"))
        *counts, stored = pipe.execute()
        by_status = {s: int(n) for s, n in zip(statuses, counts, strict=True) if int(n)}
        totals: dict[tuple[str, str], dict[str, int]] = {}
        for field, value in stored.items():
            kind, status, measure = _figure(field)
            totals.setdefault((kind, status), {})[measure] = int(value)
        return MetricsSnapshot(
            by_status,
            [
                NodeRunFigures(
                    kind,
                    status,
                    got.get("n", 0),
                    got.get("finished", 0),
                    got.get("us", 0) / 1_000_000,
                    got.get("hits", 0),
                )
                for (kind, status), got in totals.items()
                if got.get("n", 0) > 0  # a group whose every attempt was deleted
            ],
        )

    def node_run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[NodeRunHistoryRow]]:
        """Every node attempt whose start (else finish, else its run's creation) is at or after `since`, with
        its run's workflow and creation time, in batches of `batch_rows` (walks every run by id)."""
        rows = (
            NodeRunHistoryRow(
                run_id=row["run_id"],
                workflow_id=row["workflow_id"],
                workflow_version=row["workflow_version"],
                node_id=row["node_id"],
                node_type=row["node_type"],
                attempt=row["attempt"],
                status=row["status"],
                cache_hit=row["cache_hit"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                created_at=row["created_at"],
            )
            for ids in self._run_id_chunks()
            for row in self._attempt_rows(ids)
            if since is None or (row["started_at"] or row["finished_at"] or row["created_at"]) >= since
        )
        yield from _batches(rows, batch_rows)

    def run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[RunHistoryRow]]:
        """Every run created at or after `since`, in batches (the `runs` index from `since` on)."""
        low = "-inf" if since is None else to_micros(since)
        yield from _batches(self._runs_between(self.keys("runs"), low, "+inf"), batch_rows)

    def finished_runs(
        self, *, after: datetime | None, until: datetime, batch_rows: int = BATCH_ROWS
    ) -> Iterator[builtins.list[RunHistoryRow]]:
        """Every run that finished in (`after`, `until`], in batches (the `runs:finished` index)."""
        low = "-inf" if after is None else f"({to_micros(after)}"
        yield from _batches(
            self._runs_between(self.keys("runs", "finished"), low, to_micros(until)), batch_rows
        )

    def node_runs_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> Iterator[builtins.list[FinishedNodeRunRow]]:
        """Every node attempt of the given runs with their run's workflow, owner and creation, a chunk of run ids
        per batch (one pipelined round trip each)."""
        for start in range(0, len(run_ids), chunk):
            yield [
                FinishedNodeRunRow(
                    run_id=row["run_id"],
                    workflow_id=row["workflow_id"],
                    workflow_version=row["workflow_version"],
                    owner=row["owner"],
                    node_id=row["node_id"],
                    node_type=row["node_type"],
                    attempt=row["attempt"],
                    status=row["status"],
                    cache_hit=row["cache_hit"],
                    error=row["error"],
                    result_location=row["result_location"],
                    started_at=row["started_at"],
                    finished_at=row["finished_at"],
                    created_at=row["created_at"],
                )
                for row in self._attempt_rows(builtins.list(run_ids[start : start + chunk]))
            ]

    def cache_levels_of(self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK) -> dict[tuple[str, str], str]:
        """(run id, node id) -> the cache level that answered the node, from the runs' `node.cached` events."""
        return self.attempt_events_of(run_ids, chunk=chunk)[0]

    def usage_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]:
        """(run id, node id, attempt) -> (CPU-seconds, peak memory bytes, output bytes) measured for the attempt,
        from the final and retrying events of the given runs."""
        return self.attempt_events_of(run_ids, chunk=chunk)[1]

    def attempt_events_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> tuple[
        dict[tuple[str, str], str], dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]
    ]:
        """`cache_levels_of` and `usage_of` together: a script reads each run's stream inside Redis and returns
        only the wanted events' few payload fields (a failed attempt's payload holds its traceback)."""
        cached, retrying = str(EventType.NODE_CACHED), str(EventType.NODE_RETRYING)
        wanted = [cached, retrying, str(EventType.NODE_SUCCEEDED), str(EventType.NODE_FAILED)]
        framed = "\n" + "\n".join(wanted) + "\n"
        levels: dict[tuple[str, str], str] = {}
        usage: dict[tuple[str, str, int], tuple[float | None, int | None, int | None]] = {}
        step = min(chunk, RUN_CHUNK)
        for start in range(0, len(run_ids), step):
            ids = builtins.list(run_ids[start : start + step])
            reply = self.reply(self._attempt_events(args=[self.keys.prefix, framed, *ids]))
            for at in range(0, len(reply), 9):
                run_id, node_id, type_, level, attempt, failed, cpu, memory, size = reply[at : at + 9]
                if type_ == cached:
                    levels[(run_id, node_id)] = level
                    continue
                number = _number(failed if type_ == retrying else attempt)
                cpu_s = _number(cpu)
                if cpu_s is None or number is None:
                    continue  # recorded before attempts were measured
                mem, out = _number(memory), _number(size)
                usage[(run_id, node_id, int(number))] = (
                    cpu_s,
                    None if mem is None else int(mem),
                    None if out is None else int(out),
                )
        return levels, usage

    def run_scope(self, audience: Audience) -> RunScope:
        """The ids behind the runs an audience may see: the workflows it may see, deleted ones too (its own,
        those shared with it or its tenant, for a whole-tenant audience those owned in its tenant:
        `engine.store.redis.shares.visible_workflow_ids`) and, for a whole-tenant audience, its tenant's users."""
        from engine.store.redis.shares import tenant_user_ids, visible_workflow_ids

        owners = (
            tenant_user_ids(self.client, self.keys, audience.tenant_id) if audience.whole_tenant else set()
        )
        workflows = visible_workflow_ids(self.client, self.keys, audience, deleted=True)
        return RunScope(audience.user_id, frozenset(workflows), frozenset(owners))

    def anomaly_events(
        self, *, visible_to: Audience | None = None, workflow_id: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        """The latest `anomaly.detected` events (newest first, then by run and sequence; `payload`, `run_id`,
        `seq`, `created_at`) of the runs `visible_to` may see (every run when None), read from `anomalies`
        newest first until `limit` are found."""
        scope = None if visible_to is None else self.run_scope(visible_to)
        found: builtins.list[tuple[int, str, int]] = []
        offset = 0
        while True:
            chunk = self.client.zrevrangebyscore(
                self.keys("anomalies"), "+inf", "-inf", start=offset, num=RUN_CHUNK, withscores=True
            )
            offset += len(chunk)
            members = [_member(member, score) for member, score in chunk]
            pipe = self.client.pipeline(transaction=False)
            for _, run_id, _ in members:
                pipe.hmget(self.keys("run", run_id), ["workflow_id", "owner"])
            for member, (wf, owner) in zip(members, pipe.execute(), strict=True):
                if owner is None or (workflow_id is not None and wf != workflow_id):
                    continue
                if scope is None or _in_scope(scope, wf, owner):
                    found.append(member)
            # Newest first: once `limit` are found, only events as new as the limit-th can still come before it.
            if len(chunk) < RUN_CHUNK or (len(found) >= limit and members[-1][0] < found[limit - 1][0]):
                break
        found.sort(key=lambda m: (-m[0], m[1], m[2]))
        found = found[:limit]
        payloads = self._payloads([(run_id, seq) for _, run_id, seq in found])
        return [
            {"run_id": run_id, "seq": seq, "payload": payload, "created_at": from_micros(at)}
            for (at, run_id, seq), payload in zip(found, payloads, strict=True)
        ]

    def anomaly_counts(self) -> dict[str, int]:
        """`anomaly.detected` events by kind (the `anomalies` index, each event's payload read in chunks)."""
        counts: dict[str, int] = {}
        offset = 0
        while True:
            chunk = self.client.zrange(self.keys("anomalies"), offset, offset + RUN_CHUNK * 5 - 1)
            offset += len(chunk)
            members = [_member(member, 0) for member in chunk]
            for payload in self._payloads([(run_id, seq) for _, run_id, seq in members]):
                kind = str(payload.get("kind") or "unknown")
                counts[kind] = counts.get(kind, 0) + 1
            if len(chunk) < RUN_CHUNK * 5:
                return counts

    def _run_id_chunks(self) -> Iterator[builtins.list[str]]:
        """Every run id, by id, `RUN_CHUNK` at a time (`runs:ids`; a chunk resumes after the last id read, so
        runs created or deleted meanwhile never make it skip or repeat one)."""
        low = "-"
        while True:
            ids: builtins.list[str] = self.client.zrange(
                self.keys("runs", "ids"), low, "+", bylex=True, offset=0, num=RUN_CHUNK
            )
            if ids:
                yield ids
            if len(ids) < RUN_CHUNK:
                return
            low = f"({ids[-1]}"

    def _runs_between(self, index: str, low: int | str, high: int | str) -> Iterator[RunHistoryRow]:
        """The runs of a sorted set scored within [`low`, `high`], in score order, a chunk per round trip."""
        offset = 0
        while True:
            ids = self.client.zrange(index, low, high, byscore=True, offset=offset, num=RUN_CHUNK)
            offset += len(ids)
            pipe = self.client.pipeline(transaction=False)
            for run_id in ids:
                pipe.hmget(self.keys("run", run_id), _RUN_FIELDS)
            for run_id, values in zip(ids, pipe.execute(), strict=True):
                run = self._run_fields(values)
                if run is None:
                    continue  # deleted since the index was read
                yield RunHistoryRow(
                    run_id=run_id,
                    workflow_id=run["workflow_id"],
                    workflow_version=run["workflow_version"],
                    owner=run["owner"],
                    status=run["status"],
                    created_at=run["created_at"],
                    started_at=run["started_at"],
                    finished_at=run["finished_at"],
                )
            if len(ids) < RUN_CHUNK:
                return

    def _attempt_rows(self, run_ids: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        """Every attempt of `run_ids` with its run's fields (one pipelined round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hmget(self.keys("run", run_id), _RUN_FIELDS)
            pipe.hgetall(self.keys("run", run_id, "attempts"))
        replies = pipe.execute()
        rows = []
        for n, run_id in enumerate(run_ids):
            run, attempts = self._run_fields(replies[2 * n]), replies[2 * n + 1]
            if run is None:
                continue
            for field, value in attempts.items():
                # Decoded here rather than through the codec's model: a history reads every attempt there is.
                node_id, attempt = json.loads(field)
                stored = json.loads(value)
                started, finished, error = (stored.get(f) for f in ("started_at", "finished_at", "error"))
                rows.append(
                    {
                        **run,
                        "run_id": run_id,
                        "node_id": node_id,
                        "attempt": int(attempt),
                        "node_type": stored.get("node_type", ""),
                        "status": stored["status"],
                        "cache_hit": stored.get("cache_hit") == "true",
                        "error": None if error is None else json.loads(error),
                        "result_location": stored.get("result_location"),
                        "started_at": None if started is None else from_micros(started),
                        "finished_at": None if finished is None else from_micros(finished),
                    }
                )
        return rows

    def _run_fields(self, values: builtins.list[str | None]) -> dict[str, Any] | None:
        """The run fields of an `HMGET` of `_RUN_FIELDS`, decoded; None when the run is gone."""
        stored = {name: value for name, value in zip(_RUN_FIELDS, values, strict=True) if value is not None}
        if "status" not in stored:
            return None
        run = self.runs.load(stored)
        return {name: getattr(run, name, None) for name in _RUN_FIELDS}

    def _payloads(self, events: builtins.list[tuple[str, int]]) -> builtins.list[dict[str, Any]]:
        """The payloads of the given (run, seq) events (one pipelined `XRANGE` each); `{}` for one gone."""
        pipe = self.client.pipeline(transaction=False)
        for run_id, seq in events:
            pipe.xrange(self.keys("run", run_id, "events"), f"{seq}-0", f"{seq}-0")
        payloads = []
        for entries in pipe.execute():
            payloads.append(json.loads(entries[0][1]["payload"]) if entries else {})
        return payloads


def _batches(rows: Iterable[Any], size: int) -> Iterator[builtins.list[Any]]:
    """`rows` in lists of `size` (the last one shorter)."""
    batch: builtins.list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _figure(field: str) -> tuple[str, str, str]:
    """(node type, status, measure) of a `stats:attempts` field `{len}:{node type}:{status}:{measure}` (the
    length in UTF-8 bytes)."""
    raw = field.encode()
    size, rest = raw.split(b":", 1)
    kind, (status, measure) = rest[: int(size)].decode(), rest[int(size) + 1 :].decode().split(":")
    return kind, status, measure


def _number(text: str) -> float | None:
    """A payload number the script returned as text ('' or not a number: None)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _member(member: str, score: float) -> tuple[int, str, int]:
    """(time, run id, seq) of an `anomalies` member `{seq}:{run}`."""
    seq, run_id = member.split(":", 1)
    return int(score), run_id, int(seq)


def _in_scope(scope: RunScope, workflow_id: str | None, owner: str) -> bool:
    """Whether a run of `workflow_id` started by `owner` is one the scope's audience may see (as `visible_runs`)."""
    return owner == scope.user_id or owner in scope.owners or (workflow_id in scope.workflow_ids)
