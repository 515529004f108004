"""One heartbeat thread per process for every durable run the process owns.

A coordinator may own hundreds of runs; one thread and one UPDATE per interval for all of them costs the
database far less than a thread and a transaction per run. Each beat also looks for runs cancelled in the store
(`rayweave runs cancel`, the API) and tells their sink, which stops the run in its coordinator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from nodes.ids import RunId

if TYPE_CHECKING:
    from engine.store import Store

_log = logging.getLogger("rayweave.durable")


class Heartbeats:
    """The live runs of this process on one database, beaten every `interval_s` (see the module docstring)."""

    # Created on first use per (database, interval) inside the owning process, never at import time.
    _shared: ClassVar[dict[tuple[str, float], Heartbeats]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, store: Store, interval_s: float, label: str) -> None:
        self.store = store
        self.interval_s = interval_s
        self.label = label
        self._runs: dict[RunId, Callable[[], None]] = {}
        self._cond = threading.Condition()
        # Held while a beat is in flight: `discard` waits for it, so no beat of a run lands after its end (a
        # late beat would make a run that a crash left behind look alive to the recovery sweep).
        self._in_flight = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def shared(cls, key: str, store: Store, interval_s: float, label: str) -> Heartbeats:
        """The heartbeats of this process for the database `key` (its URL) at `interval_s`."""
        with cls._lock:
            found = cls._shared.get((key, interval_s))
            if found is None:
                found = cls._shared[(key, interval_s)] = cls(store, interval_s, label)
            return found

    def add(self, run_id: RunId, on_cancel: Callable[[], None]) -> None:
        """Beat `run_id` from now on (once at once, so a fresh claim stays fresh); `on_cancel` is called once if
        the run is found cancelled in the store."""
        self.store.runs.heartbeat(run_id, self.label)
        with self._cond:
            self._runs[run_id] = on_cancel
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="rayweave-heartbeats", daemon=True)
                self._thread.start()

    def discard(self, run_id: RunId) -> None:
        """Stop beating `run_id` (it ended); once this returns, no beat of it is in flight."""
        with self._cond:
            self._runs.pop(run_id, None)
        with self._in_flight:
            pass

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self.interval_s)
            with self._in_flight:
                with self._cond:
                    ids = list(self._runs)
                if not ids:
                    continue
                try:
                    cancelled = self.beat(ids)
                except Exception as exc:  # the database may be briefly away; the next beat tries again
                    _log.warning("heartbeat of %d run(s) failed: %s", len(ids), exc)
                    continue
            for run_id in cancelled:
                with self._cond:
                    on_cancel = self._runs.pop(run_id, None)
                if on_cancel is not None:
                    on_cancel()

    def beat(self, run_ids: list[RunId]) -> list[RunId]:
        """Record one heartbeat for every run in one statement; returns the ones cancelled in the store."""
        return self.store.runs.heartbeat_many(run_ids, self.label)
