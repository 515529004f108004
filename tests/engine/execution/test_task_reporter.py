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

    payloads: list[Any] = []

    def working(index: int, events: list[Any]) -> None:
        sent.append(events[0][1])
        payloads.append((events[0][0], events[0][4]))

    reporter = DelayedReporter()
    now = time.time()
    reporter.schedule(now, TaskEmitter(broken), "a", "t/x@1", 0.0)
    reporter.schedule(now + 0.01, TaskEmitter(working), "b", "t/y@1", now - 0.5)
    assert wait_until(lambda: sent == ["b"], timeout=5.0)
    assert payloads == [("node.started", {"type": "t/y@1", "started_at": now - 0.5})]


def test_reporter_skips_tasks_that_ended_before_their_delay() -> None:
    sent: list[str] = []

    def send(index: int, events: list[Any]) -> None:
        sent.append(events[0][1])

    reporter = DelayedReporter()
    now = time.time()
    quick = reporter.schedule(now + 0.05, TaskEmitter(send), "quick", "t/x@1", 0.0)
    reporter.schedule(now + 0.1, TaskEmitter(send), "slow", "t/x@1", 0.0)
    reporter.cancel(quick)  # the quick task ended first
    assert wait_until(lambda: sent == ["slow"], timeout=5.0)
    time.sleep(0.1)
    assert sent == ["slow"]
    # After an idle spell, a new task wakes the reporter again.
    reporter.schedule(time.time() + 0.02, TaskEmitter(send), "later", "t/x@1", 0.0)
    assert wait_until(lambda: sent == ["slow", "later"], timeout=5.0)


def test_a_long_task_is_reported_while_many_short_ones_come_and_go_from_other_threads() -> None:
    # Tasks of threaded actors register and end concurrently with the reporter thread reading the registry.
    import threading

    sent: list[str] = []

    def send(index: int, events: list[Any]) -> None:
        sent.append(events[0][1])

    reporter = DelayedReporter()

    def churn(name: str) -> None:
        for i in range(2000):
            token = reporter.schedule(time.time() + 0.05, TaskEmitter(send), f"{name}{i}", "t/x@1", 0.0)
            reporter.cancel(token)

    reporter.schedule(time.time() + 0.03, TaskEmitter(send), "long", "t/x@1", 0.0)
    threads = [threading.Thread(target=churn, args=(f"t{k}-",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_until(lambda: "long" in sent, timeout=5.0)
    time.sleep(0.1)
    assert sent == ["long"]


def test_a_long_task_is_reported_within_a_poll_of_its_deadline() -> None:
    sent: list[tuple[str, float]] = []

    def send(index: int, events: list[Any]) -> None:
        sent.append((events[0][1], time.time()))

    reporter = DelayedReporter()
    first = reporter.schedule(time.time() + 0.01, TaskEmitter(send), "first", "t/x@1", 0.0)
    assert wait_until(lambda: len(sent) == 1, timeout=5.0)
    reporter.cancel(first)
    time.sleep(0.05)  # the thread now polls, waiting for the next task
    due = time.time() + 0.05
    reporter.schedule(due, TaskEmitter(send), "second", "t/x@1", 0.0)
    assert wait_until(lambda: len(sent) == 2, timeout=5.0)
    assert sent[1][0] == "second"
    assert due <= sent[1][1] < due + DelayedReporter.POLL_S + 0.2


def test_a_stream_of_short_tasks_wakes_the_thread_about_once_per_poll_and_an_idle_one_not_at_all() -> None:
    # Every wakeup takes the GIL from the task running in the worker; a wakeup per task made a fan-out of
    # tiny nodes markedly slower (issue 4).
    def send(index: int, events: list[Any]) -> None:
        raise AssertionError("no task here runs long enough to be reported")

    reporter = DelayedReporter()
    assert wait_until(lambda: reporter._sleeping, timeout=5.0)  # started, looked, found nothing: asleep
    asleep = reporter.looks
    time.sleep(0.5)
    assert reporter.looks == asleep
    started = time.monotonic()
    tasks = 0
    while time.monotonic() - started < 1.0:  # a task every millisecond or so, each lasting well under 50 ms
        token = reporter.schedule(time.time() + 0.05, TaskEmitter(send), f"t{tasks}", "t/x@1", 0.0)
        time.sleep(0.0005)
        reporter.cancel(token)
        time.sleep(0.0005)
        tasks += 1
    looks = reporter.looks - asleep
    assert tasks > 100
    assert looks <= 1.0 / DelayedReporter.POLL_S + 3, f"{looks} looks for {tasks} tasks"
    assert wait_until(lambda: reporter._sleeping, timeout=5.0)
    settled = reporter.looks
    time.sleep(0.5)
    assert reporter.looks == settled  # idle again: asleep until the next task
