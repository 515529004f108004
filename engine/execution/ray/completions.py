"""Completion tracking for the coordinator: which submitted tasks have finished, learned in batches.

The coordinator needs each node task's small status record (`TaskMeta`) as soon as the task ends. Asking Ray
for a callback per ref (`ObjectRef._on_completed`, or awaiting the ref) runs Python on Ray's I/O thread once
per task: it takes the GIL from the event loop while the loop is submitting, and deserializes every record
alone. On a fan-out of a thousand tiny tasks that cost more than the tasks (issue 4, W1). Instead, one thread
per coordinator asks `ray.wait` which of the pending refs are ready and fetches the ready ones with one
`ray.get`, then hands the batch to the event loop in one wakeup.

A `ray.wait` over the pending refs costs time in proportion to their number (about 0.2 µs per ref on a
2-core machine, more on a loaded one), so the pause between scans grows with it: the thread spends at most about
3% of its time scanning (`SCAN_SHARE`), and a run of ten thousand pending nodes is scanned every 70 ms or so
rather than every 2 ms; no pause is longer than `MAX_INTERVAL_S`. While nothing is ready the thread blocks in
`ray.wait` for the first ready ref instead of scanning. (A share of 10% cost W1 about 2.5% of its time, measured
run by run against 3%: the scans compete with the event loop for the GIL and with the workers for the cores,
ADR 008.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("rayweave.engine")

#: Shortest pause between two scans (a ready batch waits at most this long beyond its own latency).
MIN_INTERVAL_S = 0.002
#: Longest wait for the first ready ref before the scan takes in newly added refs.
IDLE_WAIT_S = 0.05
#: The share of the thread's time a scan may take; the pause after a scan is its cost divided by this.
SCAN_SHARE = 0.03
#: Longest pause between two scans: a batch is learned of at most this long after a scan that missed it.
MAX_INTERVAL_S = 0.1

Callback = Callable[[Any], None]


class CompletionTracker:
    """Calls `callback(value)` on the event loop once the ref given to `add(ref, callback)` is ready.

    `value` is what `ray.get` returned for the ref, or the exception it raised (a task that failed inside
    Ray: its worker died, it was cancelled). Callbacks of one batch run in one event-loop wakeup, in the
    order their refs were found ready. The thread starts on the first `add` and runs until its event loop is
    closed (it sleeps while nothing is pending).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._incoming: deque[tuple[Any, Callback]] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ref: Any, callback: Callback) -> None:
        """Track `ref` (call from the event loop's thread)."""
        self._incoming.append((ref, callback))
        if self._thread is None:
            # The blocking calls below run on this thread, not the event loop; Ray's warning about blocking
            # calls inside an async actor does not apply to them.
            os.environ.setdefault("RAY_WARN_BLOCKING_GET_INSIDE_ASYNC", "0")
            self._thread = threading.Thread(target=self._run, name="rayweave-completions", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        import ray

        pending: dict[Any, Callback] = {}
        while True:
            if not pending and not self._incoming:
                self._wake.wait()
            self._wake.clear()
            while self._incoming:
                ref, callback = self._incoming.popleft()
                pending[ref] = callback
            if not pending:
                continue
            try:
                refs = list(pending)
                started = time.perf_counter()
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
                scan_s = time.perf_counter() - started
                if not ready:
                    # Nothing yet: block until something is (or new refs may have come in).
                    ray.wait(refs, num_returns=1, timeout=IDLE_WAIT_S, fetch_local=False)
                    continue
                batch = [
                    (pending.pop(ref), value) for ref, value in zip(ready, _values(ray, ready), strict=True)
                ]
            except Exception as exc:  # never let this thread die: every run of the coordinator relies on it
                _log.warning("completion tracking failed, retrying: %s", exc)
                time.sleep(IDLE_WAIT_S)
                continue
            try:
                self._loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # the event loop is closed: nobody is left to tell
                return
            time.sleep(min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, scan_s / SCAN_SHARE)))


def _values(ray: Any, refs: list[Any]) -> list[Any]:
    """The values of ready `refs` in one `ray.get`; one by one when some raise (each gets its exception)."""
    try:
        return list(ray.get(refs))
    except Exception:
        values: list[Any] = []
        for ref in refs:
            try:
                values.append(ray.get(ref))
            except Exception as exc:
                values.append(exc)
        return values


def _deliver(batch: list[tuple[Callback, Any]]) -> None:
    for callback, value in batch:
        try:
            callback(value)
        except Exception:  # one run's bug must not drop the results of the others in this batch
            _log.exception("completion callback failed")
