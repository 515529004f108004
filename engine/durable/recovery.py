"""The recovery sweep: find runs whose coordinator is gone and resume them.

A durable run's coordinator heartbeats into the store every `heartbeat_s` (2 s by default). A run still queued or
running whose last heartbeat is older than `stale_after_s` (10 s by default) has lost its coordinator — it was
killed, its node died, the whole Ray cluster went down, or the process that submitted it died before handing it
over. A run still queued (just created, or just claimed for a resume: its coordinator is starting) is given
`start_grace_s` (60 s by default) instead, because under load a coordinator can take longer than `stale_after_s`
to start and beat for the first time; resuming it then would start the run twice. `recover()` claims each such run atomically (`store.runs.claim`: of several sweeps, in one process or many,
exactly one wins a run) and resumes it with `DurableRunner.resume`, which does not execute again any node that
already succeeded.

Sweeps run at `rayweave serve` start-up and periodically (`start_recovery(settings)` starts a background thread
that does both; the server calls it from its lifespan and stops it at shutdown), and on demand with
`rayweave runs resume`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.durable.errors import NotResumableError
from engine.durable.sink import coordinator_label
from nodes.ids import RunId

_log = logging.getLogger("rayweave.durable")

#: A run whose heartbeat is older than this many seconds is taken to have lost its coordinator.
DEFAULT_STALE_AFTER_S = 10.0
#: A queued run (its coordinator still starting) is taken to be lost only after this many seconds without a beat.
DEFAULT_START_GRACE_S = 60.0
#: Seconds between two periodic sweeps.
DEFAULT_INTERVAL_S = 5.0

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.durable.runner import DurableRunner
    from engine.store import Store


def _runner_for(target: Settings | None, runner: DurableRunner | None) -> DurableRunner:
    from engine.durable.runner import DurableRunner

    if runner is not None:
        return runner
    if target is None:
        raise TypeError("recover() needs the installation's settings or a configured runner (runner=...)")
    return DurableRunner(target, cache=True)


def recover(
    target: Settings | None = None,
    *,
    runner: DurableRunner | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    run_ids: Collection[RunId] | None = None,
    limit: int = 100,
    handles: dict[RunId, Any] | None = None,
    start_grace_s: float | None = None,
) -> list[RunId]:
    """Resume every stale run (or only those in `run_ids`); returns the ids of the runs this call resumed.

    `target`: the `Settings` of the installation (or pass a configured `runner`, a `DurableRunner`, to choose
    the store, result store, executor, catalog and cache; the default one reads and fills the installation's
    result cache, in the scope each run was launched in). `stale_after_s=0` takes over any active
    run regardless of its heartbeat — only for an operator who knows its coordinator is gone. `start_grace_s`: how
    long a queued run (created or claimed, its coordinator not started yet) may go without a heartbeat before it
    counts as lost (default `DEFAULT_START_GRACE_S`, or 0 with `stale_after_s=0`; never less than
    `stale_after_s`), so a run merely slow to start is not resumed while it starts. `handles`, when
    given, receives the `RunHandle` of each resumed run. A run that cannot be resumed (its document no longer
    compiles, its node definitions are gone) is marked failed with the reason, so later sweeps do not retry it.
    Every stale run is looked at, oldest first, `limit` at a time (runs not started by a `DurableRunner` are
    skipped, never counted against newer ones).
    """
    runner = _runner_for(target, runner)
    store = runner.store
    older_than = timedelta(seconds=stale_after_s)
    if start_grace_s is None:
        start_grace_s = DEFAULT_START_GRACE_S if stale_after_s > 0 else 0.0
    grace = timedelta(seconds=start_grace_s)
    wanted = set(run_ids) if run_ids is not None else None
    label = coordinator_label()
    resumed: list[RunId] = []
    for run in _candidates(store, older_than, grace, limit):
        if wanted is not None and run.id not in wanted:
            continue
        if not _durable(runner, run):
            continue  # not started by a DurableRunner: no heartbeat to go by, it may well be alive
        if not store.runs.claim(run.id, label, older_than, queued_grace=grace):
            continue  # another sweep took it, or its coordinator came back
        try:
            handle = runner.resume(run.id)
        except NotResumableError as exc:
            _log.error("run %s cannot be resumed and is marked failed: %s", run.id, exc)
            _fail(store, run.id, str(exc))
            continue
        except Exception as exc:  # e.g. Ray unreachable: the run stays active and a later sweep retries it
            _log.warning("run %s could not be resumed now (%s); a later sweep will retry", run.id, exc)
            continue
        if handles is not None:
            handles[run.id] = handle
        resumed.append(run.id)
        _log.info("resumed run %s", run.id)
    return resumed


def _candidates(store: Store, older_than: timedelta, grace: timedelta, page: int) -> Iterator[Any]:
    """Every stale run, oldest first, read `page` at a time: runs the sweep skips (not started durably) must not
    hide newer ones behind them, however many there are."""
    after = None
    while True:
        runs = store.runs.stale(older_than, limit=page, queued_grace=grace, after=after)
        yield from runs
        if len(runs) < page:
            return
        after = (runs[-1].created_at, runs[-1].id)


def _durable(runner: DurableRunner, run: Any) -> bool:
    """True for runs a `DurableRunner` started: they heartbeat (or stored what a resume needs before their first
    beat). Runs started otherwise never heartbeat, so their silence says nothing about their coordinator."""
    from engine.durable.runner import RESUME_BLOB

    if run.heartbeat_at is not None:
        return True
    return bool(runner.results.has_blob(run.id, RESUME_BLOB))


def _fail(store: Store, run_id: RunId, reason: str) -> None:
    from engine.jsonlimits import clean_text
    from engine.store import RunStateError
    from nodes.states import RunStatus

    # The reason may quote what the run holds (a node definition's error): storable text on every database.
    error = {"reason": clean_text(reason), "failed_nodes": []}
    with contextlib.suppress(RunStateError):
        store.runs.update_status(run_id, RunStatus.FAILED, only_from=RunStatus.active(), error=error)


@dataclass
class RecoverySweeper:
    """A background thread that runs `recover` at once and then every `interval_s` seconds until `stop()`."""

    runner: DurableRunner
    interval_s: float = DEFAULT_INTERVAL_S
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    start_grace_s: float | None = None
    resumed: list[RunId] = field(default_factory=list)
    #: Delete finished runs this many days old every `prune_interval_s` (`engine.durable.retention`); None: never.
    retention_days: float | None = None
    prune_interval_s: float = 600.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pruned_at: float | None = None

    def start(self) -> RecoverySweeper:
        """Start the thread (the first sweep runs immediately); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rayweave-recovery", daemon=True)
            self._thread.start()
        return self

    def sweep(self) -> list[RunId]:
        """One sweep now (also what the thread does each interval)."""
        ids = recover(runner=self.runner, stale_after_s=self.stale_after_s, start_grace_s=self.start_grace_s)
        self.resumed.extend(ids)
        return ids

    def prune(self, *, now: float | None = None) -> int:
        """Delete the finished runs older than `retention_days` if the last prune is `prune_interval_s` old (or
        none was made); returns how many runs were deleted. Several replicas may prune at once: a run already
        deleted by another is simply not found again."""
        if self.retention_days is None:
            return 0
        moment = time.monotonic() if now is None else now
        if self._pruned_at is not None and moment - self._pruned_at < self.prune_interval_s:
            return 0
        from engine.durable.retention import cutoff_for, prune_runs

        self._pruned_at = moment
        runner = self.runner
        outcome = prune_runs(runner.store, runner.results, older_than=cutoff_for(self.retention_days))
        return outcome.runs

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception as exc:  # the database may be briefly away; keep sweeping
                _log.warning("recovery sweep failed: %s", exc)
            try:
                self.prune()
            except Exception as exc:  # a run another replica deleted meanwhile, or the database away
                _log.warning("pruning old runs failed: %s", exc)
            self._stop.wait(self.interval_s)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop sweeping and wait for a sweep in progress to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_recovery(
    settings: Settings,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    runner: DurableRunner | None = None,
    start_grace_s: float | None = None,
) -> RecoverySweeper:
    """Start sweeping for `rayweave serve`: call it in the app lifespan's start-up, and `.stop()` at shutdown.

    The first sweep runs at once (in the background thread, so start-up is not delayed), then one every
    `interval_s` seconds. `start_grace_s`: see `recover`.
    """
    from engine.durable.runner import DurableRunner

    return RecoverySweeper(
        runner or DurableRunner(settings, cache=True),
        interval_s,
        stale_after_s,
        start_grace_s,
        retention_days=settings.retention_days,
    ).start()
