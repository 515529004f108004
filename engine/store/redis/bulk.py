"""Bulk reads and writes on Redis, for the NDJSON export and import (`engine.store.ndjson`), with the SQL
store's semantics (`engine.store.bulk`).

Pages follow each kind's key (`BULK_KEYS`) as the SQL pages do: workflows and runs by id from `wfs:ids` and
`runs:ids` (sorted sets whose members all score 0, so `ZRANGE BYLEX` reads them by id from any id on), versions
by workflow then number, attempts by run then node then attempt, events by run then sequence (`XRANGE` of the
run's stream). A page reads a bounded number of runs per round trip and stops when it has `limit` rows, so an
export needs the memory of one page however large the store.

A write (`put`) is all or nothing: the batch's records are `WATCH`ed, read, checked (parents present, a version
with other content, an event number a Stream cannot take) and then written with every index entry they need in
one `MULTI`/`EXEC`; a record changed by someone else in between makes it read and decide again.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from engine.store.bulk import BULK_KEYS, BulkResult, bulk_columns
from engine.store.errors import BulkRowError
from engine.store.models import NOTIFIED_EVENT_TYPES, NodeRun, Run, Workflow, WorkflowVersion
from engine.store.redis.base import RedisRepository
from engine.store.redis.codec import Codec, dump_json, from_micros, to_micros
from engine.store.redis.node_runs import change
from nodes.states import EventType, RunStatus

#: Runs (or workflows) read per round trip while filling a page.
_CHUNK = 100
#: Runs whose attempts are read per round trip (a run has up to hundreds: a page needs a few runs' worth).
_RUNS_PER_READ = 10
#: Attempts to write a batch whose records others keep changing.
_RETRIES = 10


class RedisBulk(RedisRepository):
    """Keyset pages of every kind in `BULK_KINDS`, and all-or-nothing writes that keep keys; implements
    `engine.store.protocol.Bulk` (see the module docstring)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codecs: dict[str, Codec[Any]] = {
            "workflows": Codec(Workflow),
            "workflow_versions": Codec(WorkflowVersion),
            "runs": Codec(Run),
            "node_runs": Codec(NodeRun),
        }
        # The value of a field a record does not store (None, or its model's default, as `model_construct`).
        self.defaults = {
            kind: {
                name: None if field.is_required() else field.get_default(call_default_factory=True)
                for name, field in codec.model.model_fields.items()
            }
            for kind, codec in self.codecs.items()
        }

    # Reads.

    def page(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        after: Sequence[Any] | None = None,
        limit: int = 1000,
    ) -> builtins.list[dict[str, Any]]:
        """At most `limit` rows of `kind` whose key is greater than `after` (`BULK_KEYS` order), in key order;
        `since` keeps rows changed at or after that time (workflows and runs by `updated_at`, versions and
        events by `created_at`, attempts by when they finished or started, attempts with neither always)."""
        columns = bulk_columns(kind)  # refuses an unknown kind
        if after is not None and len(after) != len(BULK_KEYS[kind]):
            raise ValueError(f"a page key has {len(BULK_KEYS[kind])} parts, not {len(after)}")
        if limit < 1:
            return []
        since_us = None if since is None else to_micros(since)
        rows: builtins.list[dict[str, Any]] = []
        for row in self._rows(kind, after, since_us):
            rows.append({name: row.get(name) for name in columns})
            if len(rows) == limit:
                break
        return rows

    def _rows(self, kind: str, after: Sequence[Any] | None, since: int | None) -> Iterator[dict[str, Any]]:
        if kind == "workflows":
            for ids in self._ids("wfs", None if after is None else str(after[0]), inclusive=False):
                for stored in self._hgetall([self.keys("wf", i) for i in ids]):
                    if stored and (since is None or int(stored["updated_at"]) >= since):
                        yield self._load(kind, stored)
        elif kind == "runs":
            for ids in self._ids("runs", None if after is None else str(after[0]), inclusive=False):
                for stored in self._hgetall([self.keys("run", i) for i in ids]):
                    if stored and (since is None or int(stored["updated_at"]) >= since):
                        yield self._load(kind, stored)
        elif kind == "workflow_versions":
            yield from self._versions(after, since)
        elif kind == "node_runs":
            yield from self._attempts(after, since)
        else:
            yield from self._events(after, since)

    def _versions(self, after: Sequence[Any] | None, since: int | None) -> Iterator[dict[str, Any]]:
        start = None if after is None else str(after[0])
        for ids in self._ids("wfs", start, inclusive=True):
            pipe = self.client.pipeline(transaction=False)
            for wf_id in ids:
                pipe.hget(self.keys("wf", wf_id), "latest_version")
            for wf_id, latest in zip(ids, pipe.execute(), strict=True):
                first = int(after[1]) + 1 if after is not None and wf_id == start else 1
                numbers = range(first, int(latest or 0) + 1)
                for at in range(0, len(numbers), _CHUNK):
                    keys = [self.keys("wf", wf_id, "v", n) for n in numbers[at : at + _CHUNK]]
                    for stored in self._hgetall(keys):
                        if stored and (since is None or int(stored["created_at"]) >= since):
                            yield self._load("workflow_versions", stored)

    def _attempts(self, after: Sequence[Any] | None, since: int | None) -> Iterator[dict[str, Any]]:
        start = None if after is None else str(after[0])
        for ids in self._ids("runs", start, inclusive=True, chunk=_RUNS_PER_READ):
            for run_id, stored in zip(
                ids, self._hgetall([self.keys("run", i, "attempts") for i in ids]), strict=True
            ):
                attempts = []
                for field, value in stored.items():
                    node_id, attempt = json.loads(field)
                    if (
                        after is not None
                        and run_id == start
                        and (node_id, attempt) <= (after[1], int(after[2]))
                    ):
                        continue
                    fields = json.loads(value)
                    when = fields.get("finished_at") or fields.get("started_at")
                    if since is not None and when is not None and int(when) < since:
                        continue
                    attempts.append((node_id, attempt, fields))
                for node_id, attempt, fields in sorted(attempts, key=lambda a: (a[0], a[1])):
                    yield _attempt_row(run_id, node_id, attempt, fields)

    def _events(self, after: Sequence[Any] | None, since: int | None) -> Iterator[dict[str, Any]]:
        start = None if after is None else str(after[0])
        for ids in self._ids("runs", start, inclusive=True, chunk=_RUNS_PER_READ):
            for run_id in ids:
                low = f"({int(after[1])}-0" if after is not None and run_id == start else "-"
                while True:  # a run's events, a bounded number per round trip
                    entries = self.client.xrange(
                        self.keys("run", run_id, "events"), low, "+", count=_CHUNK * 10
                    )
                    for entry_id, fields in entries:
                        if since is None or int(fields["at"]) >= since:
                            yield _event_row(run_id, entry_id, fields)
                    if len(entries) < _CHUNK * 10:
                        break
                    low = f"({entries[-1][0]}"

    def _ids(
        self, index: str, start: str | None, *, inclusive: bool, chunk: int = _CHUNK
    ) -> Iterator[builtins.list[str]]:
        """The ids of `wfs:ids` or `runs:ids` from `start` on (after it unless `inclusive`), a chunk at a time."""
        low = "-" if start is None else ("[" if inclusive else "(") + start
        while True:
            ids: builtins.list[str] = self.client.zrange(
                self.keys(index, "ids"), low, "+", bylex=True, offset=0, num=chunk
            )
            if ids:
                yield ids
            if len(ids) < chunk:
                return
            low = f"({ids[-1]}"

    def _hgetall(self, keys: builtins.list[str]) -> builtins.list[dict[str, str]]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        replies: builtins.list[dict[str, str]] = pipe.execute()
        return replies

    def _load(self, kind: str, stored: Mapping[str, str]) -> dict[str, Any]:
        """The row of a stored record: what `Codec.load(...).model_dump()` gives, decoded directly (an export
        reads every record; a model per row doubled its time)."""
        row = dict(self.defaults[kind])
        for name, kind_of in self.codecs[kind].kinds.items():
            raw = stored.get(name)
            if raw is not None:
                row[name] = (
                    from_micros(raw) if kind_of == "time" else raw if kind_of == "text" else json.loads(raw)
                )
        return row

    # Writes.

    def put(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        """Write rows of `kind`, keeping their keys, all or nothing: new rows are added with their index
        entries; present rows are skipped, or replaced when the incoming copy is newer (a workflow or run with a
        later `updated_at`, an attempt that finished where the stored one had not). A version present with
        another content hash, a row whose parent (workflow, run) is not stored, or an event numbered below its
        run's newest stored one (a Stream's ids only grow) raises `BulkRowError` with the row's index; nothing
        of the batch is written then."""
        bulk_columns(kind)  # refuses an unknown kind
        if not rows:
            return BulkResult()
        writer: Callable[[Any, Sequence[Mapping[str, Any]]], BulkResult] = getattr(self, f"_put_{kind}")
        watched = self._watched(kind, rows)
        for _ in range(_RETRIES):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watched)
                    pipe.multi()
                    result = writer(pipe, rows)
                    pipe.execute()
                    result.changed = sorted(result.changed)
                    return result
                except redis.WatchError:
                    continue
        raise RuntimeError(
            f"bulk write of {len(rows)} {kind}: the records kept changing meanwhile; write again"
        )

    def _watched(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> builtins.list[str]:
        k = self.keys
        if kind == "workflows":
            return sorted({k("wf", row["id"]) for row in rows})
        if kind == "workflow_versions":
            return sorted({k("wf", row["workflow_id"], "v", row["version"]) for row in rows})
        if kind == "runs":
            return sorted({k("run", row["id"]) for row in rows})
        runs = {str(row["run_id"]) for row in rows}
        extra = "attempts" if kind == "node_runs" else "events"
        return sorted({k("run", r) for r in runs} | {k("run", r, extra) for r in runs})

    def _put_workflows(self, pipe: Any, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        codec, result = self.codecs["workflows"], BulkResult()
        present = self._hgetall([self.keys("wf", row["id"]) for row in rows])
        for index, (row, old) in enumerate(zip(rows, present, strict=True)):
            new = codec.fields(row)
            if old and int(new["updated_at"]) <= int(old["updated_at"]):
                result.skipped += 1
                continue
            key = self.keys("wf", row["id"])
            if old:
                pipe.delete(key)
                pipe.zrem(self.keys("wfs", "owner", old.get("owner", "")), row["id"])
                pipe.zrem(self.keys("wfs", "deleted", old.get("owner", "")), row["id"])
                result.updated += 1
            else:
                result.added += 1
            result.changed.append(index)
            pipe.hset(key, mapping=new)
            pipe.zadd(self.keys("wfs", "ids"), {row["id"]: 0})
            if "deleted_at" in new:
                pipe.zrem(self.keys("wfs"), row["id"])
                pipe.zadd(self.keys("wfs", "deleted", new.get("owner", "")), {row["id"]: 0})
            else:
                score = int(new["updated_at"])
                pipe.zadd(self.keys("wfs"), {row["id"]: score})
                pipe.zadd(self.keys("wfs", "owner", new.get("owner", "")), {row["id"]: score})
        return result

    def _put_workflow_versions(self, pipe: Any, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        self._check_parents(rows, "workflow_id", "wf", "workflow", "workflows")
        codec, result = self.codecs["workflow_versions"], BulkResult()
        present = self._hmget_each(
            [self.keys("wf", r["workflow_id"], "v", r["version"]) for r in rows], "content_hash"
        )
        for index, (row, stored_hash) in enumerate(zip(rows, present, strict=True)):
            if stored_hash is None:
                pipe.hset(self.keys("wf", row["workflow_id"], "v", row["version"]), mapping=codec.fields(row))
                result.added += 1
                result.changed.append(index)
            elif stored_hash != row["content_hash"]:
                raise BulkRowError(
                    index,
                    "content_hash",
                    f"workflow {row['workflow_id']!r} version {row['version']} already exists here with different "
                    "content; import into an installation without that workflow, or delete it first",
                )
            else:
                result.skipped += 1
        return result

    def _put_runs(self, pipe: Any, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        self._check_parents(rows, "workflow_id", "wf", "workflow", "workflows")
        codec, result = self.codecs["runs"], BulkResult()
        present = self._hgetall([self.keys("run", row["id"]) for row in rows])
        for index, (row, old) in enumerate(zip(rows, present, strict=True)):
            new = codec.fields(row)
            if old and int(new["updated_at"]) <= int(old["updated_at"]):
                result.skipped += 1
                continue
            key = self.keys("run", row["id"])
            if old:
                # Events appended after the copy was taken keep their numbers reserved.
                new["last_seq"] = str(max(int(old.get("last_seq", 0)), int(new.get("last_seq", 0))))
                self._index_run(pipe, row["id"], old, add=False)
                pipe.delete(key)
                result.updated += 1
            else:
                result.added += 1
            result.changed.append(index)
            pipe.hset(key, mapping=new)
            self._index_run(pipe, row["id"], new, add=True)
        return result

    def _index_run(self, pipe: Any, run_id: str, fields: Mapping[str, str], *, add: bool) -> None:
        """Add a run to (or take it out of) every index `engine.store.redis.runs` keeps for it."""
        k, owner, status, wf = self.keys, fields.get("owner", ""), fields["status"], fields.get("workflow_id")
        created = int(fields["created_at"])
        scored = [k("runs"), k("runs", "owner", owner), k("runs", "status", status)]
        if wf is not None:
            scored += [k("runs", "wf", wf), k("runs", "wfst", status, wf)]
        active = status in RunStatus.active()
        if active:
            scored.append(k("runs", "active"))
        idem = fields.get("idempotency_key")
        idem_key = None if idem is None else k("idem", k.pair(owner, idem))
        if add:
            for index in scored:
                pipe.zadd(index, {run_id: created})
            pipe.zadd(k("runs", "ids"), {run_id: 0})
            if "finished_at" in fields:
                pipe.zadd(k("runs", "finished"), {run_id: int(fields["finished_at"])})
            if active:
                pipe.sadd(k("runs", "active", owner), run_id)
            if idem_key is not None:
                pipe.set(idem_key, run_id, nx=True)
            return
        for index in [*scored, k("runs", "finished")]:
            pipe.zrem(index, run_id)
        pipe.srem(k("runs", "active", owner), run_id)
        if idem_key is not None:
            pipe.delete(idem_key)

    def _put_node_runs(self, pipe: Any, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        self._check_parents(rows, "run_id", "run", "run", "runs")
        codec, result = self.codecs["node_runs"], BulkResult()
        read = self.client.pipeline(transaction=False)
        for row in rows:
            read.hget(self.keys("run", row["run_id"], "attempts"), _attempt_field(row))
        present = read.execute()
        top: dict[tuple[str, str], int] = {}
        for index, (row, old) in enumerate(zip(rows, present, strict=True)):
            if old is not None and ("finished_at" in json.loads(old) or row.get("finished_at") is None):
                result.skipped += 1
                continue
            values = codec.fields({k: v for k, v in row.items() if k not in ("run_id", "node_id", "attempt")})
            pipe.hset(self.keys("run", row["run_id"], "attempts"), _attempt_field(row), dump_json(values))
            amounts = change(old, values)
            for at in range(0, len(amounts), 2):
                pipe.hincrby(self.keys("stats", "attempts"), amounts[at], amounts[at + 1])
            node = (str(row["run_id"]), str(row["node_id"]))
            top[node] = max(top.get(node, 0), int(row["attempt"]))
            result.updated += old is not None
            result.added += old is None
            result.changed.append(index)
        read = self.client.pipeline(transaction=False)
        for run_id, node_id in top:
            read.hget(self.keys("run", run_id, "last"), node_id)
        for (run_id, node_id), last in zip(top, read.execute(), strict=True):
            if top[(run_id, node_id)] > int(last or 0):
                pipe.hset(self.keys("run", run_id, "last"), node_id, top[(run_id, node_id)])
        return result

    def _put_events(self, pipe: Any, rows: Sequence[Mapping[str, Any]]) -> BulkResult:
        self._check_parents(rows, "run_id", "run", "run", "runs")
        result = BulkResult()
        runs = sorted({str(row["run_id"]) for row in rows})
        read = self.client.pipeline(transaction=False)
        for run_id in runs:
            read.xrevrange(self.keys("run", run_id, "events"), "+", "-", count=1)
            read.hget(self.keys("run", run_id), "last_seq")
        replies = read.execute()
        newest = {
            r: int(replies[2 * n][0][0].split("-")[0]) if replies[2 * n] else 0 for n, r in enumerate(runs)
        }
        last_seq = {r: int(replies[2 * n + 1] or 0) for n, r in enumerate(runs)}
        read = self.client.pipeline(transaction=False)
        for row in rows:
            read.xrange(self.keys("run", row["run_id"], "events"), f"{row['seq']}-0", f"{row['seq']}-0")
        present = read.execute()
        fresh: dict[tuple[str, int], int] = {}
        for index, (row, found) in enumerate(zip(rows, present, strict=True)):
            key = (str(row["run_id"]), int(row["seq"]))
            if found or key in fresh:
                result.skipped += 1
                continue
            if key[1] < 1 or key[1] <= newest[key[0]]:
                raise BulkRowError(
                    index,
                    "seq",
                    f"run {key[0]!r} already has events up to sequence {newest[key[0]]} here and event {key[1]} "
                    "is not one of them; on Redis a run's sequence numbers only grow: import into an "
                    "installation without this run's events, or leave this record out",
                )
            fresh[key] = index
        for (run_id, seq), index in sorted(fresh.items()):
            row = rows[index]
            at = to_micros(row["created_at"])
            fields = {"type": str(EventType(row["type"])), "payload": dump_json(dict(row["payload"] or {}))}
            fields["at"] = str(at)
            if row.get("node_id") is not None:
                fields["node"] = str(row["node_id"])
            pipe.xadd(self.keys("run", run_id, "events"), fields, id=f"{seq}-0")
            if fields["type"] == EventType.ANOMALY_DETECTED:
                pipe.zadd(self.keys("anomalies"), {f"{seq}:{run_id}": at})
                pipe.sadd(self.keys("run", run_id, "anomalies"), f"{seq}:{run_id}")
            if fields["type"] in NOTIFIED_EVENT_TYPES:  # the webhooks' index, as the append script keeps it
                member = f"{seq}:{fields['type']}:{run_id}"
                pipe.zadd(self.keys("notified"), {member: at})
                pipe.sadd(self.keys("run", run_id, "notified"), member)
            result.added += 1
            result.changed.append(index)
            last_seq[run_id] = max(last_seq[run_id], seq)
        for run_id in {run_id for run_id, _ in fresh}:
            pipe.hset(self.keys("run", run_id), "last_seq", last_seq[run_id])
        return result

    def _check_parents(
        self, rows: Sequence[Mapping[str, Any]], column: str, prefix: str, what: str, kind: str
    ) -> None:
        wanted = sorted({str(row[column]) for row in rows if row.get(column) is not None})
        pipe = self.client.pipeline(transaction=False)
        for parent in wanted:
            pipe.exists(self.keys(prefix, parent))
        found = {parent for parent, there in zip(wanted, pipe.execute(), strict=True) if there}
        for index, row in enumerate(rows):
            value = row.get(column)
            if value is not None and str(value) not in found:
                raise BulkRowError(
                    index,
                    column,
                    f"{what} {value!r} is neither in this store nor earlier in the import; import the "
                    f"{what} first (export it with its {kind}) or leave this record out",
                )

    def _hmget_each(self, keys: builtins.list[str], field: str) -> builtins.list[str | None]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, field)
        values: builtins.list[str | None] = pipe.execute()
        return values


def _attempt_field(row: Mapping[str, Any]) -> str:
    """The field of an attempt in its run's `attempts` hash (as `engine.store.redis.node_runs` names it)."""
    return dump_json([str(row["node_id"]), int(row["attempt"])])


def _attempt_row(run_id: str, node_id: str, attempt: int, fields: Mapping[str, str]) -> dict[str, Any]:
    """A bulk row of a node attempt (the SQL `node_runs` table's columns) from its stored fields (as
    `engine.store.redis.node_runs` writes them; decoded here: an export reads every attempt there is)."""
    started, finished, error = fields.get("started_at"), fields.get("finished_at"), fields.get("error")
    return {
        "run_id": run_id,
        "node_id": node_id,
        "attempt": int(attempt),
        "node_type": fields.get("node_type", ""),
        "status": fields["status"],
        "cache_hit": fields.get("cache_hit") == "true",
        "result_location": fields.get("result_location"),
        "error": None if error is None else json.loads(error),
        "started_at": None if started is None else from_micros(started),
        "finished_at": None if finished is None else from_micros(finished),
    }


def _event_row(run_id: str, entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """A bulk row of an event (the SQL `events` table's columns) from its stream entry."""
    return {
        "run_id": run_id,
        "seq": int(entry_id.split("-", 1)[0]),
        "type": fields["type"],
        "node_id": fields.get("node"),
        "payload": json.loads(fields["payload"]),
        "created_at": from_micros(fields["at"]),
    }
