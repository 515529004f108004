"""The per-process `node.started` reporter of task workers."""

from __future__ import annotations

import time
from typing import Any

from engine.execution.executor import wait_until
from engine.execution.task import DelayedReporter, TaskEmitter


def test_reporter_keeps_reporting_after_a_send_fails() -> None:
    # One reporter thread serves every task of a worker: a failed send (the coordinator is gone) must not
    # silence the later tasks of that worker.
    sent: list[str] = []

    def broken(index: int, events: list[Any]) -> None:
        raise ValueError("Failed to look up actor with name 'rayweave-coordinator'")

    def working(index: int, events: list[Any]) -> None:
        sent.append(events[0][1])

    reporter = DelayedReporter()
    now = time.time()
    reporter.schedule(now, TaskEmitter(broken), "a", {})
    reporter.schedule(now + 0.01, TaskEmitter(working), "b", {})
    assert wait_until(lambda: sent == ["b"], timeout=5.0)
