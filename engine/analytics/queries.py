"""Questions about run history, answered by DuckDB over the Parquet files `export_history` writes.

Definitions used throughout:
- an *attempt* is one row of node_runs; an *execution* is one node in one run (all its attempts); a node that
  was skipped (its branch was not taken) did not execute: its rows are neither attempts nor executions;
- an execution *failed* when its last attempt failed; it was *retried* when it has more than one attempt;
- it was a *cache hit* when any attempt was served from the cache (`cache_hit`, or status `cached`);
- latencies are of succeeded attempts that actually ran (cache hits excluded), in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import duckdb

from engine.analytics.export import (
    EXECUTION_SCHEMA,
    FINISHED_NODE_RUN_SCHEMA,
    FINISHED_RUN_SCHEMA,
    NODE_RUN_SCHEMA,
    RUN_SCHEMA,
    is_incremental,
)


@dataclass(frozen=True)
class NodeTypeLatency:
    """Run time of a node type's succeeded, non-cached attempts."""

    node_type: str
    attempts: int
    p50_s: float
    p95_s: float
    max_s: float


@dataclass(frozen=True)
class NodeTypeFailures:
    """How often a node type fails, per attempt and per execution."""

    node_type: str
    attempts: int
    failed_attempts: int
    executions: int
    failed_executions: int

    @property
    def failure_rate(self) -> float:
        """Share of executions whose final attempt failed."""
        return self.failed_executions / self.executions if self.executions else 0.0

    @property
    def attempt_failure_rate(self) -> float:
        """Share of attempts that failed (retried failures included)."""
        return self.failed_attempts / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class NodeTypeRetries:
    """Retries of a node type: executions needing more than one attempt, and the extra attempts in total."""

    node_type: str
    executions: int
    retried_executions: int
    retries: int
    max_attempts: int


@dataclass(frozen=True)
class CacheHits:
    """Cache hits among executions (of one node type, or `node_type="*"` for all)."""

    node_type: str
    executions: int
    hits: int

    @property
    def hit_rate(self) -> float:
        """Share of executions served from the cache."""
        return self.hits / self.executions if self.executions else 0.0


@dataclass(frozen=True)
class RunDurationBucket:
    """Finished runs created in one time bucket and their durations (seconds)."""

    bucket: datetime
    runs: int
    succeeded: int
    failed: int
    p50_s: float | None
    p95_s: float | None
    mean_s: float | None


@dataclass(frozen=True)
class WorkflowSummary:
    """Per-workflow totals (inline runs are grouped under `workflow_id=None`)."""

    workflow_id: str | None
    runs: int
    succeeded: int
    failed: int
    p50_s: float | None
    p95_s: float | None
    node_executions: int
    cache_hits: int
    retries: int


class RunAnalytics:
    """DuckDB over an export directory (full, `export_history`, or incremental, `sync_export`: the latter's
    files have more columns, see `incremental`). Use as a context manager, or call `close()`."""

    def __init__(
        self, directory: str | Path, *, since: datetime | None = None, until: datetime | None = None
    ) -> None:
        self.directory = Path(directory)
        #: True over an incremental export: finished runs only, with owner, cache level, queue wait, sizes.
        self.incremental = is_incremental(self.directory)
        self._db = duckdb.connect(":memory:", config={"threads": 2})
        # Every question binds the views again, which reads each file's footer: keep them once read.
        self._db.execute("SET parquet_metadata_cache = true")
        schemas = (
            (
                ("node_runs", FINISHED_NODE_RUN_SCHEMA),
                ("runs", FINISHED_RUN_SCHEMA),
                ("executions", EXECUTION_SCHEMA),
            )
            if self.incremental
            else (("node_runs", NODE_RUN_SCHEMA), ("runs", RUN_SCHEMA))
        )
        #: True when every run row carries the sums of its executions (`export.RUN_ROLLUP_FIELDS`; runs exported
        #: before them do not): run-level breakdowns then read them instead of the executions.
        self.run_rollups = False
        for name, schema in schemas:
            files = sorted((self.directory / name).glob("day=*/*.parquet"))
            if name == "runs" and self.incremental and files:
                self.run_rollups = all("executions" in _columns(f) for f in files)
            if files:
                paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                # A view: each question reads only the columns it needs from the files.
                self._db.execute(
                    f"CREATE VIEW {name} AS SELECT * REPLACE (CAST(day AS VARCHAR) AS day) "
                    f"FROM read_parquet([{paths}], hive_partitioning = true, union_by_name = true) "
                    f"WHERE {self._window(name, since, until)}"
                )
            else:
                # No history yet: answer with empty results rather than an error.
                self._db.register(f"{name}_empty", schema.empty_table())
                self._db.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")
        # The attempts that executed (or were answered from the cache): skipped nodes never ran.
        self._db.execute("CREATE VIEW attempts AS SELECT * FROM node_runs WHERE status <> 'skipped'")
        if not self.incremental:
            # One row per execution (node in a run); an incremental export writes these rows itself.
            self._db.execute(
                """
                CREATE VIEW executions AS
                SELECT run_id, node_id, any_value(workflow_id) AS workflow_id, any_value(node_type) AS node_type,
                       count(*) AS attempts, bool_or(cache_hit OR status = 'cached') AS cache_hit,
                       arg_max(status, attempt) AS final_status
                FROM attempts GROUP BY run_id, node_id
                """
            )

    def _window(self, view: str, since: datetime | None, until: datetime | None) -> str:
        """The WHERE clause keeping the runs created in [since, until) (and their node attempts)."""
        if since is None and until is None:
            return "TRUE"
        if not self.incremental:
            raise ValueError(
                f"{self.directory} is a full export without run creation times on node attempts; "
                "a time window needs an incremental export (sync_export)"
            )
        column = "created_at" if view == "runs" else "run_created_at"  # node_runs, executions
        terms = []
        if since is not None:
            terms.append(f"{column} >= TIMESTAMPTZ '{since.astimezone(UTC).isoformat()}'")
        if until is not None:
            terms.append(f"{column} < TIMESTAMPTZ '{until.astimezone(UTC).isoformat()}'")
        return " AND ".join(terms)

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._db.close()

    def __enter__(self) -> RunAnalytics:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def slowest_node_types(self, *, limit: int = 10, workflow_id: str | None = None) -> list[NodeTypeLatency]:
        """Node types by p95 run time, slowest first."""
        rows = self._rows(
            f"""
            SELECT node_type, count(*), quantile_cont(duration_s, 0.5), quantile_cont(duration_s, 0.95),
                   max(duration_s)
            FROM node_runs
            WHERE status = 'succeeded' AND NOT cache_hit AND duration_s IS NOT NULL {self._wf(workflow_id)}
            GROUP BY node_type ORDER BY 4 DESC, 1 LIMIT ?
            """,
            [*self._wf_params(workflow_id), limit],
        )
        return [NodeTypeLatency(r[0], r[1], float(r[2]), float(r[3]), float(r[4])) for r in rows]

    def failure_rates(self, *, workflow_id: str | None = None) -> list[NodeTypeFailures]:
        """Failures per node type, highest execution failure rate first."""
        rows = self._rows(
            f"""
            WITH a AS (
                SELECT node_type, count(*) AS attempts, count(*) FILTER (WHERE status = 'failed') AS failed
                FROM attempts WHERE TRUE {self._wf(workflow_id)} GROUP BY node_type),
            e AS (
                SELECT node_type, count(*) AS executions,
                       count(*) FILTER (WHERE final_status = 'failed') AS failed
                FROM executions WHERE TRUE {self._wf(workflow_id)} GROUP BY node_type)
            SELECT a.node_type, a.attempts, a.failed, e.executions, e.failed
            FROM a JOIN e USING (node_type)
            ORDER BY e.failed / e.executions DESC, a.failed DESC, 1
            """,
            [*self._wf_params(workflow_id), *self._wf_params(workflow_id)],
        )
        return [NodeTypeFailures(*r) for r in rows]

    def retry_counts(self, *, workflow_id: str | None = None) -> list[NodeTypeRetries]:
        """Retries per node type, most retries first."""
        rows = self._rows(
            f"""
            SELECT node_type, count(*), count(*) FILTER (WHERE attempts > 1), sum(attempts - 1), max(attempts)
            FROM executions WHERE TRUE {self._wf(workflow_id)}
            GROUP BY node_type ORDER BY 4 DESC, 1
            """,
            self._wf_params(workflow_id),
        )
        return [NodeTypeRetries(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]

    def cache_hit_rate(
        self, *, workflow_id: str | None = None, by_node_type: bool = False
    ) -> list[CacheHits]:
        """Cache hit rate overall (one entry, `node_type="*"`) or per node type."""
        group = "node_type" if by_node_type else "'*'"
        rows = self._rows(
            f"""
            SELECT {group} AS node_type, count(*), count(*) FILTER (WHERE cache_hit)
            FROM executions WHERE TRUE {self._wf(workflow_id)}
            GROUP BY 1 ORDER BY 1
            """,
            self._wf_params(workflow_id),
        )
        return [CacheHits(*r) for r in rows]

    def run_durations(
        self, *, bucket: Literal["hour", "day", "week", "month"] = "day", workflow_id: str | None = None
    ) -> list[RunDurationBucket]:
        """Durations of finished runs per time bucket of their creation, oldest bucket first."""
        if bucket not in ("hour", "day", "week", "month"):
            raise ValueError(f"bucket must be hour, day, week or month, not {bucket!r}")
        rows = self._rows(
            f"""
            SELECT date_trunc('{bucket}', created_at) AS b, count(*),
                   count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
                   quantile_cont(duration_s, 0.5), quantile_cont(duration_s, 0.95), avg(duration_s)
            FROM runs WHERE finished_at IS NOT NULL {self._wf(workflow_id)}
            GROUP BY b ORDER BY b
            """,
            self._wf_params(workflow_id),
        )
        return [RunDurationBucket(*r) for r in rows]

    def per_workflow(self) -> list[WorkflowSummary]:
        """Totals per workflow, most runs first."""
        rows = self._rows(
            """
            WITH r AS (
                SELECT workflow_id, count(*) AS runs, count(*) FILTER (WHERE status = 'succeeded') AS ok,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       quantile_cont(duration_s, 0.5) AS p50, quantile_cont(duration_s, 0.95) AS p95
                FROM runs GROUP BY workflow_id),
            e AS (
                SELECT workflow_id, count(*) AS executions, count(*) FILTER (WHERE cache_hit) AS hits,
                       sum(attempts - 1) AS retries
                FROM executions GROUP BY workflow_id)
            SELECT r.workflow_id, r.runs, r.ok, r.failed, r.p50, r.p95,
                   coalesce(e.executions, 0), coalesce(e.hits, 0), coalesce(e.retries, 0)
            FROM r LEFT JOIN e ON r.workflow_id IS NOT DISTINCT FROM e.workflow_id
            ORDER BY r.runs DESC, r.workflow_id
            """,
            [],
        )
        return [WorkflowSummary(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8])) for r in rows]

    def use_tenants(self, tenants: Mapping[str, str]) -> None:
        """Make `tenants` (owner -> tenant) the table `owner_tenants(owner, tenant)` the queries may join."""
        import pyarrow as pa

        table = pa.table(
            {"owner": list(tenants), "tenant": list(tenants.values())},
            schema=pa.schema([("owner", pa.string()), ("tenant", pa.string())]),
        )
        self._db.register("owner_tenants", table)

    def execute(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query over the views `runs`, `node_runs`, `attempts` and `executions`."""
        return self._rows(sql, params or [])

    def _rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _wf(workflow_id: str | None) -> str:
        return "AND workflow_id = ?" if workflow_id is not None else ""

    @staticmethod
    def _wf_params(workflow_id: str | None) -> list[Any]:
        return [workflow_id] if workflow_id is not None else []


def _columns(path: Path) -> list[str]:
    """The column names of a Parquet file (its footer only)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)
