"""Retention: delete finished runs older than a period, with their events, attempts and stored results.

`RAYWEAVE_RETENTION_DAYS` (`Settings.retention_days`) makes the recovery sweep of `rayweave serve` prune at most
once every `PRUNE_INTERVAL_S`; `rayweave db prune --older-than DAYS` does it by hand (`--dry-run` counts only).
A run is pruned when it is finished (succeeded, failed or cancelled) and finished before the cut-off; a run
still queued or running is never touched, however old. Deleting a run deletes its events and node runs in the
same transaction (foreign keys with `ON DELETE CASCADE` on the relational backends, one script on Redis): on
PostgreSQL each run's rows lie in one hash partition of `events` and `node_runs` (ADR 023), so retention is a
batch of small deletes and autovacuum works per partition. The run's stored results go first (a crash between
the two leaves a run without results, which the next prune deletes, never results without a run to find them).

What stays: the analytics history already exported to Parquet (`engine.analytics.export`: reports over pruned
runs keep working), the cache (entries are keyed by node and inputs, not by run, and have their own limits), and
the audit log, which records each prune (`runs.pruned`, with the cut-off and the count).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nodes.states import RunStatus

if TYPE_CHECKING:
    from engine.durable.results import ResultStore
    from engine.store import Store

_log = logging.getLogger(__name__)

#: Seconds between two prunes of the recovery sweep when a retention period is set.
PRUNE_INTERVAL_S = 600.0

#: Runs read per page while pruning.
BATCH = 200


@dataclass
class PruneResult:
    """What one prune did (or, with `dry_run`, would do): the cut-off, the runs deleted and the first of them."""

    cutoff: datetime
    runs: int = 0
    dry_run: bool = False
    run_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (the CLI's `--json`)."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "runs": self.runs,
            "dry_run": self.dry_run,
            "run_ids": self.run_ids,
        }


def cutoff_for(days: float, *, now: datetime | None = None) -> datetime:
    """The moment `days` before `now` (default: the current time, UTC); `days` must be positive."""
    if days <= 0:
        raise ValueError(f"a retention period must be a positive number of days, not {days}")
    return (now or datetime.now(UTC)) - timedelta(days=days)


def prune_runs(
    store: Store,
    results: ResultStore | None,
    *,
    older_than: datetime,
    dry_run: bool = False,
    limit: int | None = None,
    actor: str = "retention",
    batch: int = BATCH,
) -> PruneResult:
    """Delete the runs that finished before `older_than` (at most `limit`), their events, node runs and, when
    `results` is given, their stored results; audited as `runs.pruned` when any was deleted."""
    outcome = PruneResult(cutoff=older_than, dry_run=dry_run)
    cursor: str | None = None
    terminal = sorted(str(s) for s in RunStatus.terminal())
    while limit is None or outcome.runs < limit:
        # Runs are created before they finish: those created after the cut-off cannot have finished before it.
        page = store.runs.list(status=terminal, created_before=older_than, limit=batch, cursor=cursor)
        for run in page.items:
            if run.finished_at is None or _utc(run.finished_at) >= older_than:
                continue
            if limit is not None and outcome.runs >= limit:
                break
            if not dry_run:
                if results is not None:
                    results.delete_run(run.id)
                store.runs.delete(run.id)
            outcome.runs += 1
            if len(outcome.run_ids) < 20:
                outcome.run_ids.append(str(run.id))
        cursor = page.next_cursor
        if not cursor:
            break
    if outcome.runs and not dry_run:
        details = {"cutoff": older_than.isoformat(), "runs": outcome.runs}
        store.audit.append(actor, "runs.pruned", resource_type="run", details=details)
        _log.info("retention: deleted %d runs finished before %s", outcome.runs, older_than.isoformat())
    return outcome


def _utc(moment: datetime) -> datetime:
    # SQLite and MariaDB hand back naive datetimes that the store wrote in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
