"""Breakdowns of finished runs over a time window, grouped by workflow, version, node, node type, owner, tenant.

Read from an incremental export (`sync_export`) with `RunAnalytics`. Two units, chosen by the grouping:

- grouped by run-level dimensions only (`workflow`, `version`, `owner`, `tenant`), a group counts *runs*: their
  outcome,
  duration (start to finish) and queue wait (creation to start);
- grouped by a node-level dimension too (`node`, `node_type`), a group counts *executions* (one node in one run,
  all its attempts; skipped nodes did not execute): outcome of the last attempt, duration from the first start
  to the last finish of executions that ran (cache hits excluded). Queue wait is not recorded per node.

Both carry retries, cache hits by level (memory, object store, disk) and the bytes of the stored node results
(what nodes hand downstream; None when no result was stored on a local disk), and the measured resources of
the executions (`engine.execution.usage`): `cpu_seconds` (the sum over every attempt; None when no execution
of the group was measured, e.g. history recorded before measurement began) and the peak-memory rise of one
execution, median (`memory_p50_bytes`) and highest (`memory_max_bytes`).

A run's `tenant` is the tenant of its owner, read from the store when asked (`Filters.tenants`, `owner_tenants`):
the exports carry owners only, so a user moved to another tenant takes its history along. Runs whose owner is
no user of the installation (the SDK's and the command line's `local`) have no tenant (null).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.analytics.queries import RunAnalytics
    from engine.store import Store
    from engine.store.reports import RunScope

#: Dimension name -> column. `node` and `node_type` make the unit an execution instead of a run.
DIMENSIONS = {
    "workflow": "workflow_id",
    "version": "workflow_version",
    "owner": "owner",
    "node": "node_id",
    "node_type": "node_type",
    "tenant": "tenant",
}
NODE_DIMENSIONS = frozenset({"node", "node_type"})
CPU_NOTE = (
    "cpu_seconds is the CPU time of the threads that ran the node bodies; memory is the rise of the worker "
    "process's peak resident memory during an execution (shared when nodes run together in one process); "
    "executions recorded before they were measured count in neither"
)
_RELATIVE = re.compile(r"^(\d{1,12})([hdw])$")
#: Bounds DuckDB and Python both represent: a window outside them is refused, never an overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class AnalyticsError(ValueError):
    """A question analytics cannot answer as asked (bad window, unknown dimension); the message says why."""


@dataclass(frozen=True)
class Window:
    """Runs created in [`since`, `until`) (an open end when None)."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, now: datetime | None = None) -> Window:
        """From text: an ISO date or date-time (UTC when it has no zone) or, for `since`, a span back from now
        (`24h`, `7d`, `4w`). Raises `AnalyticsError` naming the bad bound."""
        moment = now or datetime.now(UTC)
        window = cls(_parse_bound("since", since, moment), _parse_bound("until", until, moment))
        window.check()
        return window

    def check(self) -> None:
        """Raise `AnalyticsError` unless `since` is before `until` and both are in years 1970..9998."""
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and not _EARLIEST <= value < _LATEST:
                raise AnalyticsError(
                    f"{name} {value.isoformat()} is outside the years 1970..9998; give a date in that range"
                )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise AnalyticsError(
                f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})"
            )

    def to_json(self) -> dict[str, str | None]:
        """ISO texts (None for an open end)."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def _parse_bound(name: str, text: str | None, now: datetime) -> datetime | None:
    if text is None or text == "":
        return None
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        try:
            span = timedelta(**{{"h": "hours", "d": "days", "w": "weeks"}[unit]: amount})
            return now - span
        except OverflowError:
            raise AnalyticsError(f"{name} {text!r} reaches before year 1; ask for a shorter span") from None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AnalyticsError(
            f"{name} {text!r} is not a date; write 2026-11-27, 2026-11-27T09:00:00Z or a span such as 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Breakdown:
    """The figures of one group (see the module docstring for what `runs` counts in each unit)."""

    key: dict[str, Any]
    runs: int
    succeeded: int
    failed: int
    cancelled: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    queue_wait_p50_s: float | None
    queue_wait_p95_s: float | None
    executions: int
    retries: int
    retried_executions: int
    cache_hits: int
    cache_hits_by_level: dict[str, int]
    output_bytes: int | None
    cpu_seconds: float | None = None
    memory_p50_bytes: int | None = None
    memory_max_bytes: int | None = None

    @property
    def success_rate(self) -> float:
        """Share of runs (executions) that succeeded (a cache hit counts as success)."""
        return self.succeeded / self.runs if self.runs else 0.0

    @property
    def failure_rate(self) -> float:
        """Share of runs (executions) that failed."""
        return self.failed / self.runs if self.runs else 0.0

    @property
    def cache_hit_rate(self) -> float:
        """Share of executions answered from the cache."""
        return self.cache_hits / self.executions if self.executions else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form, rates included."""
        data = dataclasses.asdict(self)
        data.update(
            success_rate=self.success_rate, failure_rate=self.failure_rate, cache_hit_rate=self.cache_hit_rate
        )
        return data


@dataclass(frozen=True)
class BreakdownReport:
    """The groups of one question, with the unit they count and notes on what is not recorded."""

    group_by: list[str]
    unit: str
    window: Window
    groups: list[Breakdown]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`rayweave stats --by ... --json`, `GET /v1/analytics/summary`)."""
        return {
            "group_by": self.group_by,
            "unit": self.unit,
            "window": self.window.to_json(),
            "groups": [g.to_json() for g in self.groups],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Filters:
    """Restrict a breakdown to one workflow, version, owner, node type or tenant (None: all), and to the runs a
    caller may see (`scope`, `engine.store.reports.RunScope`; None: every run). `tenants` maps owners (user ids)
    to their tenants: needed to group or filter by tenant (`owner_tenants`)."""

    workflow_id: str | None = None
    version: int | None = None
    owner: str | None = None
    node_type: str | None = None
    scope: RunScope | None = None
    tenant: str | None = None
    tenants: Mapping[str, str] | None = None


def owner_tenants(store: Store) -> dict[str, str]:
    """Each user's tenant, by user id (the owners of runs): what `Filters.tenants` takes."""
    return {user.id: user.tenant_id for user in store.users.list()}


def scope_term(scope: RunScope | None) -> tuple[str, list[Any]]:
    """A DuckDB condition (on the `owner` and `workflow_id` columns) keeping the runs `scope` may see: its own,
    those of the workflows it may see, those started by the owners it may see (`visible_runs` as ids)."""
    if scope is None:
        return "TRUE", []
    terms: list[str] = ["owner = ?"]
    params: list[Any] = [scope.user_id]
    if scope.workflow_ids:
        terms.append("workflow_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(sorted(scope.workflow_ids))
    if scope.owners:
        terms.append("owner IN (SELECT unnest(?::VARCHAR[]))")
        params.append(sorted(scope.owners))
    return f"({' OR '.join(terms)})", params


def breakdown(
    analytics: RunAnalytics,
    group_by: Sequence[str] = ("workflow",),
    *,
    window: Window = Window(),
    filters: Filters = Filters(),
    memory_median: bool = True,
    executions_of: Sequence[Breakdown] | None = None,
) -> BreakdownReport:
    """Figures per group of `group_by` dimensions (names in `DIMENSIONS`) over the runs created in `window`.

    `memory_median=False` leaves `memory_p50_bytes` None (an exact median is the costliest figure of a scan;
    ask for it only where it is shown). `executions_of`: the groups of a finer node-level breakdown of the same
    runs (e.g. by node, for a report grouped by workflow), whose execution figures are summed instead of
    scanning the executions again; only for one run-level group, and the median is then None."""
    if not analytics.incremental:
        raise AnalyticsError(
            f"{analytics.directory} is not an incremental export; breakdowns read what sync_export writes"
        )
    dims = list(dict.fromkeys(group_by))
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise AnalyticsError(f"cannot group by {unknown}; group by any of {sorted(DIMENSIONS)}")
    window.check()
    runs_from, executions_from = "runs", "executions"
    if "tenant" in dims or filters.tenant is not None:
        if filters.tenants is None:
            raise AnalyticsError(
                "grouping or filtering by tenant needs the owners' tenants (Filters.tenants)"
            )
        analytics.use_tenants(filters.tenants)
        runs_from, executions_from = (
            f"{v} LEFT JOIN owner_tenants USING (owner)" for v in ("runs", "executions")
        )
    node_level = bool(NODE_DIMENSIONS & set(dims))
    cols = [DIMENSIONS[d] for d in dims]
    keys = ", ".join(cols) if cols else "'all'"
    group = "GROUP BY ALL"
    exec_where, exec_params = _where(window, filters, "run_created_at", executions=True)
    # One pass over the executions for their figures, the cache hits by level and, grouped by node, the
    # outcomes too: each extra pass re-reads the files, which is most of a breakdown's time. The levels are
    # counted one by one (a `histogram` made DuckDB materialise the whole scan before grouping it).
    median = "quantile_disc(memory_bytes, 0.5)" if memory_median else "NULL"
    execution_figures = f"""count(*), sum(attempts - 1), count(*) FILTER (WHERE attempts > 1),
                   count(*) FILTER (WHERE cache_hit), sum(output_bytes), count(output_bytes),
                   sum(cpu_s), {median}, max(memory_bytes), {_LEVEL_COUNTS}"""
    width = max(len(cols), 1)
    if node_level:
        rows = analytics.execute(
            f"""
            SELECT {keys}, {execution_figures}, count(*),
                   count(*) FILTER (WHERE final_status IN ('succeeded', 'cached') OR cache_hit),
                   count(*) FILTER (WHERE final_status = 'failed'),
                   count(*) FILTER (WHERE final_status = 'cancelled'),
                   quantile_cont(span_s, [0.5, 0.95, 0.99]) FILTER (WHERE NOT cache_hit),
                   NULL
            FROM {executions_from} WHERE {exec_where} {group} ORDER BY 2 DESC
            """,
            exec_params,
        )
        figures = len(_NO_EXECUTIONS)
        counts = _by_key([r[: len(cols) + figures] for r in rows], len(cols))
        outcomes = [(*r[: len(cols)], *r[len(cols) + figures :]) for r in rows]
    else:
        run_where, run_params = _where(window, filters, "created_at", executions=False)
        # The runs carry the sums of their executions (when exported with them): one scan of the runs answers
        # all but the memory median, and a node-type filter, which need the executions themselves.
        rolled = (
            executions_of is None
            and not memory_median
            and filters.node_type is None
            and analytics.run_rollups
        )
        outcomes = analytics.execute(
            f"""
            SELECT {keys}, count(*), count(*) FILTER (WHERE status = 'succeeded'),
                   count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'cancelled'),
                   quantile_cont(duration_s, [0.5, 0.95, 0.99]), quantile_cont(queue_wait_s, [0.5, 0.95])
                   {", " + _ROLLED_FIGURES if rolled else ""}
            FROM {runs_from} WHERE {run_where} {group} ORDER BY 2 DESC
            """,
            run_params,
        )
        if rolled:
            split = width + 6
            counts = {tuple(r[:width]): tuple(r[split:]) for r in outcomes}
            outcomes = [tuple(r[:split]) for r in outcomes]
        elif executions_of is None:
            counts = _by_key(
                analytics.execute(
                    f"SELECT {keys}, {execution_figures} FROM {executions_from} WHERE {exec_where} {group}",
                    exec_params,
                ),
                len(cols),
            )
        elif len(outcomes) > 1:
            raise AnalyticsError(f"executions_of needs one group of runs, not {len(outcomes)}")
        else:
            counts = {tuple(r[:width]): _summed(executions_of) for r in outcomes}
    groups = []
    for row in outcomes:
        key = tuple(row[:width])
        runs, ok, failed, cancelled, durations, waits = row[width:]
        n_exec, retries, retried, hits, size, sized, cpu, memory, memory_max, *by_level = counts.get(
            key, _NO_EXECUTIONS
        )
        durations = durations or [None, None, None]
        waits = waits or [None, None]
        groups.append(
            Breakdown(
                key=dict(zip(dims, key, strict=False)) if cols else {},
                runs=int(runs),
                succeeded=int(ok),
                failed=int(failed),
                cancelled=int(cancelled),
                p50_s=_num(durations[0]),
                p95_s=_num(durations[1]),
                p99_s=_num(durations[2]),
                queue_wait_p50_s=_num(waits[0]),
                queue_wait_p95_s=_num(waits[1]),
                executions=int(n_exec),
                retries=int(retries or 0),
                retried_executions=int(retried or 0),
                cache_hits=int(hits or 0),
                cache_hits_by_level=_levels(int(hits or 0), by_level),
                output_bytes=int(size) if sized else None,
                cpu_seconds=_num(cpu),
                memory_p50_bytes=None if memory is None else int(memory),
                memory_max_bytes=None if memory_max is None else int(memory_max),
            )
        )
    notes = [CPU_NOTE]
    if node_level:
        notes.append(
            "grouped by node or node type: counts are executions; queue wait is not recorded per node"
        )
    if "tenant" in dims:
        notes.append("tenant: the tenant of the run's owner; null for runs of owners that are not users")
    if not groups:
        notes.append("no finished runs match the window and filters")
    return BreakdownReport(dims, "execution" if node_level else "run", window, groups, notes)


#: The levels a cache hit comes from (`engine.cache.result_cache`); a hit without a known one is "unknown".
CACHE_LEVELS = ("memory", "object_store", "disk")
_LEVEL_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE cache_hit AND cache_level = '{level}')" for level in CACHE_LEVELS
)
#: The execution figures from the runs' sums of their executions, in `_NO_EXECUTIONS`' order.
_ROLLED_FIGURES = (
    "sum(executions), sum(retries), sum(retried_executions), sum(cache_hits), sum(output_bytes), "
    "sum(output_sized), sum(cpu_s), NULL, max(memory_max_bytes), "
    + ", ".join(f"sum(hits_{level})" for level in CACHE_LEVELS)
)
#: The execution figures of a group without executions (see `breakdown`'s first query).
_NO_EXECUTIONS: tuple[Any, ...] = (0, 0, 0, 0, None, 0, None, None, None, *(0 for _ in CACHE_LEVELS))


def _levels(hits: int, counted: Sequence[Any]) -> dict[str, int]:
    """Cache hits by level, the levels without hits left out."""
    found = {level: int(n or 0) for level, n in zip(CACHE_LEVELS, counted, strict=True) if n}
    unknown = hits - sum(found.values())
    return {**found, "unknown": unknown} if unknown > 0 else found


def _summed(groups: Sequence[Breakdown]) -> tuple[Any, ...]:
    """The execution figures of the union of node-level `groups` (what `breakdown` reads from one scan), the
    memory median excepted (None: a median of medians is not one)."""
    executions = sum(g.executions for g in groups)
    sized = [g.output_bytes for g in groups if g.output_bytes is not None]
    cpu = [g.cpu_seconds for g in groups if g.cpu_seconds is not None]
    memory = [g.memory_max_bytes for g in groups if g.memory_max_bytes is not None]
    return (
        executions,
        sum(g.retries for g in groups),
        sum(g.retried_executions for g in groups),
        sum(g.cache_hits for g in groups),
        sum(sized) if sized else None,
        len(sized),
        sum(cpu) if cpu else None,
        None,
        max(memory) if memory else None,
        *(sum(g.cache_hits_by_level.get(level, 0) for g in groups) for level in CACHE_LEVELS),
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _by_key(rows: list[tuple[Any, ...]], width: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    width = max(width, 1)
    return {tuple(r[:width]): tuple(r[width:]) for r in rows}


def _where(window: Window, filters: Filters, created: str, *, executions: bool) -> tuple[str, list[Any]]:
    terms: list[str] = ["TRUE"]
    params: list[Any] = []
    if window.since is not None:
        terms.append(f"{created} >= ?")
        params.append(window.since)
    if window.until is not None:
        terms.append(f"{created} < ?")
        params.append(window.until)
    for column, value in (
        ("workflow_id", filters.workflow_id),
        ("workflow_version", filters.version),
        ("owner", filters.owner),
        ("tenant", filters.tenant),
    ):
        if value is not None:
            terms.append(f"{column} = ?")
            params.append(value)
    if filters.scope is not None:
        term, scoped = scope_term(filters.scope)
        terms.append(term)
        params.extend(scoped)
    if filters.node_type is not None:
        if executions:
            terms.append("node_type = ?")
            params.append(filters.node_type)
        else:
            terms.append("run_id IN (SELECT run_id FROM executions WHERE node_type = ?)")
            params.append(filters.node_type)
    return " AND ".join(terms), params
