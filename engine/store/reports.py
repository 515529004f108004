"""Read-only aggregates and bulk reads over runs and node runs: what `/metrics` scrapes and what the analytics
export writes to Parquet. The queries live here so their callers never see SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa

from engine.store.base import Repository
from engine.store.columns import is_mysql
from engine.store.models import Event, NodeRun, Run, User, Workflow, table_of
from engine.store.shares import Audience, visible_workflows
from nodes.states import EventType

#: Rows per batch of the history reads (bounded memory however many runs the store holds).
BATCH_ROWS = 50_000
#: Run ids per `IN (...)` of the reads by run id (below SQLite's and PostgreSQL's parameter limits).
ID_CHUNK = 500


@dataclass(frozen=True)
class NodeRunFigures:
    """Node attempts of one node type in one status: how many, how many finished (and their total wall time in
    seconds, from `started_at` to `finished_at`), and how many were answered from the result cache."""

    node_type: str
    status: str
    count: int
    finished: int
    finished_seconds: float
    cache_hits: int


@dataclass(frozen=True)
class MetricsSnapshot:
    """Runs by status and node-run figures by node type and status, read in one go (sizes bounded by the number
    of statuses and node types, never by the number of runs)."""

    runs_by_status: dict[str, int] = field(default_factory=dict)
    node_runs: list[NodeRunFigures] = field(default_factory=list)


class NodeRunHistoryRow(TypedDict):
    """One node attempt with its run's workflow (`created_at` is the run's creation time)."""

    run_id: str
    workflow_id: str | None
    workflow_version: int | None
    node_id: str
    node_type: str
    attempt: int
    status: str
    cache_hit: bool
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class RunHistoryRow(TypedDict):
    """One run's identity, owner, status and times."""

    run_id: str
    workflow_id: str | None
    workflow_version: int | None
    owner: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class FinishedNodeRunRow(TypedDict):
    """One node attempt of a finished run, with what analytics needs beyond `NodeRunHistoryRow`: the run's owner,
    the error type of a failed attempt and where the result was stored."""

    run_id: str
    workflow_id: str | None
    workflow_version: int | None
    owner: str
    node_id: str
    node_type: str
    attempt: int
    status: str
    cache_hit: bool
    error: dict[str, Any] | None
    result_location: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class RunScope:
    """The runs an audience may see, as the analytics filter them (`engine.store.shares.visible_runs` as ids):
    its own (`user_id`), those of `workflow_ids` (the workflows it may see) and those started by `owners` (the
    users of its tenant, for an audience that sees its whole tenant; empty otherwise)."""

    user_id: str
    workflow_ids: frozenset[str]
    owners: frozenset[str] = frozenset()


class ReportRepository(Repository):
    """Aggregates for metrics and bulk reads for analytics (see the module docstring)."""

    def metrics_snapshot(self) -> MetricsSnapshot:
        """Two aggregate `GROUP BY` queries: runs by status, node attempts by node type and status."""
        runs, node_runs = table_of(Run), table_of(NodeRun)
        seconds = _seconds_between(node_runs.c.started_at, node_runs.c.finished_at, self.engine.dialect.name)
        finished = sa.and_(node_runs.c.started_at.is_not(None), node_runs.c.finished_at.is_not(None))
        query = sa.select(
            node_runs.c.node_type,
            node_runs.c.status,
            sa.func.count(),
            sa.func.sum(sa.case((finished, 1), else_=0)),
            sa.func.sum(sa.case((finished, seconds), else_=0.0)),
            sa.func.sum(sa.case((node_runs.c.cache_hit, 1), else_=0)),
        ).group_by(node_runs.c.node_type, node_runs.c.status)
        with self.engine.connect() as conn:
            by_status = conn.execute(sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)).all()
            figures = conn.execute(query).all()
        return MetricsSnapshot(
            {str(status): int(count) for status, count in by_status},
            [
                NodeRunFigures(
                    str(node_type or ""),
                    str(status),
                    int(count),
                    int(n_finished or 0),
                    float(total_s or 0.0),
                    int(n_cached or 0),
                )
                for node_type, status, count, n_finished, total_s, n_cached in figures
            ],
        )

    def node_run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[list[NodeRunHistoryRow]]:
        """Every node attempt whose start (else finish, else its run's creation) is at or after `since`, with
        its run's workflow and creation time, in batches of `batch_rows`."""
        n, r = table_of(NodeRun), table_of(Run)
        when = sa.func.coalesce(n.c.started_at, n.c.finished_at, r.c.created_at)
        query = sa.select(
            n.c.run_id,
            r.c.workflow_id,
            r.c.workflow_version,
            n.c.node_id,
            n.c.node_type,
            n.c.attempt,
            n.c.status,
            n.c.cache_hit,
            n.c.started_at,
            n.c.finished_at,
            r.c.created_at,
        ).join(r, r.c.id == n.c.run_id)
        if since is not None:
            query = query.where(when >= since)
        for rows in self._chunks(query, batch_rows):
            yield [NodeRunHistoryRow(**row) for row in rows]  # type: ignore[typeddict-item]

    def run_history(
        self, *, since: datetime | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[list[RunHistoryRow]]:
        """Every run created at or after `since`, in batches of `batch_rows`."""
        r = table_of(Run)
        query = sa.select(
            r.c.id.label("run_id"),
            r.c.workflow_id,
            r.c.workflow_version,
            r.c.owner,
            r.c.status,
            r.c.created_at,
            r.c.started_at,
            r.c.finished_at,
        )
        if since is not None:
            query = query.where(r.c.created_at >= since)
        for rows in self._chunks(query, batch_rows):
            yield [RunHistoryRow(**row) for row in rows]  # type: ignore[typeddict-item]

    def finished_runs(
        self, *, after: datetime | None, until: datetime, batch_rows: int = BATCH_ROWS
    ) -> Iterator[list[RunHistoryRow]]:
        """Every run that finished in (`after`, `until`] (from the beginning when `after` is None), in batches:
        what an incremental analytics export adds since its last watermark."""
        r = table_of(Run)
        query = sa.select(
            r.c.id.label("run_id"),
            r.c.workflow_id,
            r.c.workflow_version,
            r.c.owner,
            r.c.status,
            r.c.created_at,
            r.c.started_at,
            r.c.finished_at,
        ).where(*_finished_window(r, after, until))
        for rows in self._chunks(query, batch_rows):
            yield [RunHistoryRow(**row) for row in rows]  # type: ignore[typeddict-item]

    def node_runs_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> Iterator[list[FinishedNodeRunRow]]:
        """Every node attempt of the given runs (with their run's workflow, owner and creation), read by run id
        in chunks of `chunk` ids (the primary key's prefix: no scan however many runs the store holds)."""
        n, r = table_of(NodeRun), table_of(Run)
        for start in range(0, len(run_ids), chunk):
            ids = list(run_ids[start : start + chunk])
            query = (
                sa.select(
                    n.c.run_id,
                    r.c.workflow_id,
                    r.c.workflow_version,
                    r.c.owner,
                    n.c.node_id,
                    n.c.node_type,
                    n.c.attempt,
                    n.c.status,
                    n.c.cache_hit,
                    n.c.error,
                    n.c.result_location,
                    n.c.started_at,
                    n.c.finished_at,
                    r.c.created_at,
                )
                .join(r, r.c.id == n.c.run_id)
                .where(n.c.run_id.in_(ids))
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            yield [FinishedNodeRunRow(**row) for row in rows]  # type: ignore[typeddict-item]

    def cache_levels_of(self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK) -> dict[tuple[str, str], str]:
        """(run id, node id) -> the cache level (memory, object, disk, ...) that answered the node, from the
        `node.cached` events of the given runs (read by run id in chunks)."""
        return self.attempt_events_of(run_ids, chunk=chunk)[0]

    def usage_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]:
        """(run id, node id, attempt) -> (CPU-seconds, peak memory bytes, output bytes) measured for the
        attempt, from the `cpu_s`/`memory_bytes`/`output_bytes` fields of the final and retrying events of the
        given runs (issue 20; attempts recorded before they were measured are absent). Read by run id in
        chunks."""
        return self.attempt_events_of(run_ids, chunk=chunk)[1]

    def attempt_events_of(
        self, run_ids: Sequence[str], *, chunk: int = ID_CHUNK
    ) -> tuple[
        dict[tuple[str, str], str], dict[tuple[str, str, int], tuple[float | None, int | None, int | None]]
    ]:
        """`cache_levels_of` and `usage_of` together, in one read of the given runs' events (what the analytics
        export needs for every attempt): the `node.cached` events and the final and retrying ones, with only
        the payload fields needed extracted by the database (a failed attempt's payload holds its traceback)."""
        e = table_of(Event)
        cached = str(EventType.NODE_CACHED)
        retrying = str(EventType.NODE_RETRYING)
        wanted = [cached, retrying, str(EventType.NODE_SUCCEEDED), str(EventType.NODE_FAILED)]
        fields = [
            e.c.payload["level"].as_string(),
            e.c.payload["attempt"].as_float(),
            e.c.payload["failed_attempt"].as_float(),
            e.c.payload["cpu_s"].as_float(),
            e.c.payload["memory_bytes"].as_float(),
            e.c.payload["output_bytes"].as_float(),
        ]
        levels: dict[tuple[str, str], str] = {}
        usage: dict[tuple[str, str, int], tuple[float | None, int | None, int | None]] = {}
        for start in range(0, len(run_ids), chunk):
            ids = list(run_ids[start : start + chunk])
            query = sa.select(e.c.run_id, e.c.node_id, e.c.type, *fields).where(
                e.c.run_id.in_(ids), e.c.type.in_(wanted)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for run_id, node_id, type_, level, attempt, failed, cpu, memory, size in rows:
                if type_ == cached:
                    levels[(str(run_id), str(node_id))] = str(level or "")
                    continue
                if cpu is None:
                    continue  # recorded before attempts were measured
                number = failed if type_ == retrying else attempt
                if number is None:
                    continue
                usage[(str(run_id), str(node_id), int(number))] = (
                    float(cpu),
                    None if memory is None else int(memory),
                    None if size is None else int(size),
                )
        return levels, usage

    def run_scope(self, audience: Audience) -> RunScope:
        """The ids behind `visible_runs(audience)`: the workflows it may see (deleted ones too, as the runs list)
        and, for a whole-tenant audience, its tenant's users (two indexed reads)."""
        workflows = sa.select(Workflow.id).where(visible_workflows(audience))  # type: ignore[call-overload]
        with self.engine.connect() as conn:
            ids = frozenset(str(i) for i in conn.execute(workflows).scalars())
            owners: frozenset[str] = frozenset()
            if audience.whole_tenant:
                users = sa.select(User.id).where(User.tenant_id == audience.tenant_id)  # type: ignore[call-overload]
                owners = frozenset(str(i) for i in conn.execute(users).scalars())
        return RunScope(audience.user_id, ids, owners)

    def anomaly_events(
        self, *, visible_to: Audience | None = None, workflow_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The latest `anomaly.detected` events (newest first; `payload`, `run_id`, `seq`, `created_at`) of the
        runs `visible_to` may see (every run when None), read through their partial index."""
        from engine.store.shares import visible_runs

        e, r = table_of(Event), table_of(Run)
        query = (
            sa.select(e.c.run_id, e.c.seq, e.c.payload, e.c.created_at)
            .join(r, r.c.id == e.c.run_id)
            .where(e.c.type == EventType.ANOMALY_DETECTED)
            .order_by(e.c.created_at.desc(), e.c.run_id, e.c.seq)
            .limit(limit)
        )
        if visible_to is not None:
            query = query.where(visible_runs(visible_to))
        if workflow_id is not None:
            query = query.where(r.c.workflow_id == workflow_id)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def anomaly_counts(self) -> dict[str, int]:
        """`anomaly.detected` events by kind (one `GROUP BY` over their partial index)."""
        e = table_of(Event)
        if self.engine.dialect.name == "sqlite":
            kind = sa.func.json_extract(e.c.payload, "$.kind")
        elif is_mysql(self.engine.dialect):  # no CAST(... AS JSON) on MariaDB; the column is JSON already
            kind = e.c.payload["kind"].as_string()
        else:
            kind = sa.cast(e.c.payload, sa.JSON)["kind"].as_string()
        query = sa.select(kind, sa.func.count()).where(e.c.type == EventType.ANOMALY_DETECTED).group_by(kind)
        with self.engine.connect() as conn:
            return {str(k or "unknown"): int(n) for k, n in conn.execute(query).all()}

    def _chunks(self, query: sa.Select[Any], size: int) -> Iterator[list[dict[str, Any]]]:
        # Stream: a server-side cursor on PostgreSQL, so reading millions of rows needs bounded memory.
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
            for partition in result.mappings().partitions(size):
                yield [dict(row) for row in partition]


def _finished_window(r: Any, after: datetime | None, until: datetime) -> list[Any]:
    """WHERE terms: the run finished after `after` (when given) and at or before `until`."""
    terms = [r.c.finished_at.is_not(None), r.c.finished_at <= until]
    if after is not None:
        terms.append(r.c.finished_at > after)
    return terms


def _seconds_between(start: Any, end: Any, dialect: str) -> Any:
    """SQL for `end - start` in seconds: SQLite has no interval type, PostgreSQL has no `julianday`, MariaDB and
    MySQL subtract DATETIMEs with TIMESTAMPDIFF."""
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    if is_mysql(dialect):
        return sa.func.timestampdiff(sa.text("MICROSECOND"), start, end) / 1_000_000.0
    return sa.func.extract("epoch", end - start)
