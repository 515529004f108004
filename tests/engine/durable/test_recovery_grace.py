"""A durable run that is slow to start (no coordinator heartbeat yet) is not resumed while it starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.store import Store
from nodes.states import RunStatus
from tests.engine.durable.flows import chain, executions

#: Stale after this long without a heartbeat (running runs) ...
STALE_S = 0.2
#: ... and queued runs only after this long (their coordinator may still be starting).
GRACE_S = 1.5


@pytest.fixture
def runner(settings: Settings, store: Store) -> Iterator[DurableRunner]:
    """A durable runner on the in-process executor and SQLite."""
    yield DurableRunner(settings, store=store, executor="local", heartbeat_s=0.1)


def launch_without_start(runner: DurableRunner, log: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Record a run as `launch` does, but its coordinator never starts (it is slow, or its driver died)."""
    with monkeypatch.context() as patch:
        patch.setattr(runner, "_start", lambda *args, **kwargs: None)
        return str(runner.launch(chain(log), {"x": 1}).run.id)


def test_a_run_slow_to_start_is_resumed_only_after_its_grace(
    runner: DurableRunner, store: Store, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    run_id = launch_without_start(runner, log, monkeypatch)
    run = store.runs.get(run_id)
    assert run.status == "queued" and run.heartbeat_at is not None  # a heartbeat from creation on

    time.sleep(STALE_S + 0.3)  # stale by its heartbeat, but still within its start-up grace
    assert time.monotonic() - started < GRACE_S
    assert recover(runner=runner, stale_after_s=STALE_S, start_grace_s=GRACE_S) == []
    assert store.runs.get(run_id).status == "queued" and executions(log) == {}

    time.sleep(max(0.0, GRACE_S + 0.2 - (time.monotonic() - started)))
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=STALE_S, start_grace_s=GRACE_S, handles=handles) == [run_id]
    result = handles[run_id].result(timeout=10)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_the_default_grace_is_longer_than_the_stale_limit(
    runner: DurableRunner, store: Store, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = launch_without_start(runner, log, monkeypatch)
    time.sleep(STALE_S + 0.1)
    assert recover(runner=runner, stale_after_s=STALE_S) == []
    # An operator forcing a takeover (stale_after_s=0) does not wait for the grace.
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=0, run_ids=[run_id], handles=handles) == [run_id]
    assert handles[run_id].result(timeout=10).outputs == {"out": 6}


def test_a_claimed_run_is_queued_again_and_not_claimed_twice_while_it_starts(
    runner: DurableRunner, store: Store, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = launch_without_start(runner, log, monkeypatch)
    store.runs.update_status(run_id, "running")  # it started, then its coordinator died
    time.sleep(STALE_S + 0.1)
    # The first sweep claims it, and its resume is slow to start (no coordinator beat yet) ...
    with monkeypatch.context() as patch:
        patch.setattr(runner, "_start", lambda *args, **kwargs: None)
        assert recover(runner=runner, stale_after_s=STALE_S, start_grace_s=GRACE_S) == [run_id]
    assert store.runs.get(run_id).status == "queued"
    time.sleep(STALE_S + 0.1)
    # ... so a second sweep, past the stale limit but within the grace, leaves it to its new owner.
    assert recover(runner=runner, stale_after_s=STALE_S, start_grace_s=GRACE_S) == []
