"""`DurableSource`: the `RunSource` behind the handle of a durable run.

It reads the live run (the coordinator, or the in-process executor) while it can, and falls back to the store
when it cannot: the coordinator died (the run will be resumed by a recovery sweep, maybe in another process) or
forgot the run (it keeps only the last few finished runs). Either way `result()` returns the run's outcome and
`events()` misses nothing.

Sequence numbers are the store's: the executor numbers each execution of a run from 1, so the events of a resumed
execution are shifted by the number of events the run had stored before it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from engine.durable.stored import StoredRun
from engine.execution.events import Event
from engine.execution.result import RunResult
from nodes.states import RunStatus

_log = logging.getLogger("rayweave.durable")


class DurableSource:
    """Live first, the store after (see the module docstring)."""

    def __init__(self, inner: Any, stored: StoredRun, seq_offset: int = 0) -> None:
        self.inner = inner
        self.stored = stored
        self.run_id = stored.run_id
        self.seq_offset = seq_offset
        self._live = True

    def _lost(self, exc: BaseException) -> None:
        if self._live:
            _log.info("run %s: following it in the store from now on (%s)", self.run_id, exc)
        self._live = False

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Events after `after` (store numbering), waiting up to `timeout` s for one; and whether it ended."""
        if self._live and after >= self.seq_offset:
            try:
                events, finished = self.inner.poll(after - self.seq_offset, timeout)
            except Exception as exc:  # the coordinator is gone or forgot the run: the store has the rest
                self._lost(exc)
            else:
                shifted = [replace(e, seq=e.seq + self.seq_offset) for e in events]
                return shifted, bool(finished)
        if after < self.seq_offset:
            events, _ = self.stored.poll(after, 0.0)  # events of earlier executions: only the store has them
            return events[: self.seq_offset - after], False
        return self.stored.poll(after, timeout)

    def result(self, timeout: float | None = None) -> RunResult:
        """The run's result, from the live run or, once that is gone, from the store.

        A live run that succeeded but whose end the store recorded as failed (its outputs could not be kept:
        `StoreEventSink`) is answered from the store, so the caller sees what everyone else will."""
        started = time.monotonic()
        if self._live:
            try:
                result: RunResult = self.inner.result(timeout)
                if result.status is RunStatus.SUCCEEDED and self.stored.recorded_failed():
                    return self.stored.result(0.0)
                return result
            except TimeoutError:
                raise
            except Exception as exc:
                self._lost(exc)
        remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
        return self.stored.result(remaining)

    def cancel(self) -> None:
        """Cancel in the store (so a resumed execution stays cancelled) and in the live run."""
        self.stored.cancel()
        if self._live:
            try:
                self.inner.cancel()
            except Exception as exc:
                self._lost(exc)
