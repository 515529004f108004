"""`timeout_s` limits each attempt, on Ray and in-process: a timed-out attempt is a failed attempt that the
node's retry policy may follow with another one, which gets the full timeout (issue 16)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.execution.events import Event
from engine.execution.ray.executor import RayExecutor
from engine.store import open_store
from engine.workflow import Workflow
from nodes.states import EventType, NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s

#: Sleeping nodes need no CPU (see test_ray.NO_CPU).
NO_CPU = {"num_cpus": 0}
#: Long enough that an attempt which got only what an earlier attempt left of it would not finish.
TIMEOUT_S = 1.5


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> Any:
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        return RayExecutor()
    return "local"


def slow_then_quick(marker: Path, *, later_s: float, retry: dict[str, Any] | None = None) -> Workflow:
    """`n` sleeps far beyond its timeout on attempt 1 and `later_s` on attempt 2; `d` reads its output."""
    wf = Workflow("per_attempt")
    n = wf.add(
        "n",
        s.slow_at_first,
        x=1,
        params={"marker": str(marker), "first_s": 20.0, "later_s": later_s},
        timeout_s=TIMEOUT_S,
        resources=NO_CPU,
        retry=retry,
    )
    wf.output("out", wf.add("d", s.double, x=n))
    return wf


def attempts_run(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()]


def test_a_timed_out_attempt_is_retried_with_the_full_timeout(
    settings: Settings, executor: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    seen: list[Event] = []
    started = time.monotonic()
    # Attempt 2 runs for two thirds of the timeout: it fits only if the timeout is its own.
    result = engine.run(
        slow_then_quick(marker, later_s=TIMEOUT_S * 2 / 3),
        settings=settings,
        executor=executor,
        cache=False,
        on_event=seen.append,
    )
    assert time.monotonic() - started < 15
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert result.outputs == {"out": 2 * (1 + 100 * 2)}  # the dependent read attempt 2's output
    assert result.nodes["n"].attempts == 2 and result.nodes["n"].error is None
    assert attempts_run(marker) == [1, 2]
    retrying = [e for e in seen if e.type is EventType.NODE_RETRYING and e.node == "n"]
    assert len(retrying) == 1
    assert retrying[0].attempt == 2 and retrying[0].payload["failed_attempt"] == 1
    assert retrying[0].payload["error"] == "NodeTimeoutError"
    assert "attempt 1 exceeded its timeout of 1.5 s" in retrying[0].payload["message"]
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    finals = [e.type for e in seen if e.node == "n" and e.type is not EventType.NODE_LOG]
    assert finals == [EventType.NODE_STARTED, EventType.NODE_RETRYING, EventType.NODE_SUCCEEDED]


def test_when_every_attempt_times_out_the_node_fails_naming_the_last(
    settings: Settings, executor: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    wf = slow_then_quick(marker, later_s=20.0)
    started = time.monotonic()
    result = engine.run(wf, settings=settings, executor=executor, cache=False)
    assert time.monotonic() - started < 15
    assert result.status is RunStatus.FAILED
    node = result.nodes["n"]
    assert node.status is NodeStatus.FAILED and node.attempts == 2
    assert node.error is not None and node.error.type == "NodeTimeoutError" and node.error.attempt == 2
    assert "attempt 2 exceeded its timeout" in node.error.message
    assert attempts_run(marker) == [1, 2]
    assert result.nodes["d"].error is not None and result.nodes["d"].error.type == "UpstreamFailedError"


def test_a_retry_policy_that_does_not_cover_timeouts_makes_one_attempt(
    settings: Settings, executor: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    retry = {"max_attempts": 3, "retry_on": ["ConnectionError"]}
    result = engine.run(
        slow_then_quick(marker, later_s=0.0, retry=retry), settings=settings, executor=executor, cache=False
    )
    assert result.nodes["n"].error is not None and result.nodes["n"].error.type == "NodeTimeoutError"
    assert result.nodes["n"].attempts == 1 and attempts_run(marker) == [1]


def test_cancelling_during_the_backoff_after_a_timeout_ends_the_run(
    settings: Settings, executor: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    retry = {"max_attempts": 2, "backoff": "fixed", "initial_s": 60.0, "max_s": 60.0, "jitter": False}
    handle = engine.submit(
        slow_then_quick(marker, later_s=0.0, retry=retry), settings=settings, executor=executor, cache=False
    )
    for event in handle.events(poll_s=0.1):
        if event.type is EventType.NODE_RETRYING:
            break
    cancelled_at = time.monotonic()
    handle.cancel()
    result = handle.result(timeout=30)
    assert time.monotonic() - cancelled_at < 10
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["n"].status is NodeStatus.CANCELLED
    assert attempts_run(marker) == [1]


def test_a_durable_run_records_the_timed_out_attempt_as_failed(
    settings: Settings, executor: Any, tmp_path: Path
) -> None:
    store = open_store(settings.resolved_database_url)
    try:
        runner = DurableRunner(
            settings, store=store, executor="ray" if isinstance(executor, RayExecutor) else "local"
        )
        result = runner.run(slow_then_quick(tmp_path / "attempts", later_s=0.0), timeout=60)
        assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 402}
        rows = [r for r in store.node_runs.list(result.run_id) if r.node_id == "n"]
        assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "succeeded")]
        assert rows[0].error is not None and rows[0].error["type"] == "NodeTimeoutError"
        assert "attempt 1 exceeded" in rows[0].error["message"]
        stored = runner.attach(result.run_id).result(timeout=10)
        assert stored.nodes["n"].attempts == 2 and stored.nodes["n"].status is NodeStatus.SUCCEEDED
    finally:
        store.close()
