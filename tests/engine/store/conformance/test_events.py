"""Events (batched, gap-free sequence numbers, read after a sequence) and node runs (every attempt kept)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from engine.execution.events import Event, EventLog
from engine.store import DuplicateAttemptError, DuplicateEventError, NewEvent, NotFoundError, Store
from nodes.states import EventType
from tests.engine.store.conformance import utcnow


def new_run(store: Store) -> str:
    return store.runs.create(document={"format": "rayweave.workflow/1", "name": "w", "nodes": {}}).run.id


def test_batches_get_consecutive_sequence_numbers_and_read_after_resumes(store: Store) -> None:
    run = new_run(store)
    assert store.events.last_seq(run) == 0
    assert store.events.append(run, [NewEvent("run.queued"), NewEvent("run.started")]) == [1, 2]
    assert store.events.append(run, [NewEvent("node.started", "a", {"attempt": 1})]) == [3]
    assert store.events.append(run, []) == []
    events = store.events.read(run)
    assert [(e.seq, e.type, e.node) for e in events] == [
        (1, "run.queued", None),
        (2, "run.started", None),
        (3, "node.started", "a"),
    ]
    assert events[2].payload == {"attempt": 1} and events[2].attempt == 1
    assert [e.seq for e in store.events.read(run, after=1)] == [2, 3]
    assert [e.seq for e in store.events.read(run, after=1, limit=1)] == [2]
    assert store.events.read(run, after=3) == []
    assert store.events.last_seq(run) == 3


def test_runs_have_independent_sequences(store: Store) -> None:
    a, b = new_run(store), new_run(store)
    store.events.append(a, [NewEvent("run.queued")] * 3)
    assert store.events.append(b, [NewEvent("run.queued")]) == [1]


def test_coordinator_numbered_events_continue_the_sequence(store: Store) -> None:
    run = new_run(store)
    store.events.append(run, [NewEvent("run.queued", seq=1), NewEvent("run.started", seq=2)])
    # After a resume, store-numbered events continue after the highest explicit number.
    assert store.events.append(run, [NewEvent("node.cached", "a")]) == [3]
    with pytest.raises(DuplicateEventError, match="sequence"):
        store.events.append(run, [NewEvent("node.started", "b", seq=2)])
    assert [e.type for e in store.events.read(run)] == ["run.queued", "run.started", "node.cached"]
    with pytest.raises(ValueError, match="all events"):
        store.events.append(run, [NewEvent("a", seq=9), NewEvent("b")])


def test_concurrent_appenders_never_collide_or_leave_gaps(store: Store) -> None:
    run = new_run(store)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(10):
                store.events.append(run, [NewEvent("node.log", payload={"line": "x"})] * 5)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert [e.seq for e in store.events.read(run)] == list(range(1, 151))


def test_an_engine_event_reads_back_equal(store: Store) -> None:
    # The store reads its events back as the engine's one event model: every field, to the microsecond, with
    # the attempt (which the row keeps in the payload) and a payload of nested JSON.
    run = new_run(store)
    log = EventLog(run)
    log.append(EventType.RUN_QUEUED, payload={"workflow": "w"})
    log.append(EventType.NODE_STARTED, "a", 1, {"type": "builtin/add@1"})
    log.append(EventType.NODE_OUTPUT, "a", 2, {"value": [1, 2.5, {"k": None, "ok": True}], "text": "é ✓"})
    log.append(EventType.RUN_SUCCEEDED, at=1_780_000_000.1234567)
    written = log.after(0)
    store.events.append(run, [NewEvent.of(e) for e in written])
    read = store.events.read(run)
    assert read == written
    assert read[2].attempt == 2 and read[2].payload["attempt"] == 2
    assert read[3].time == 1_780_000_000.123457  # the microsecond the store keeps
    assert [Event.from_json(e.to_json()) for e in read] == written


def test_events_of_a_missing_run_are_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="missing"):
        store.events.append("missing", [NewEvent("run.queued")])
    with pytest.raises(NotFoundError):
        store.events.last_seq("missing")


def test_every_attempt_is_recorded_and_latest_and_succeeded_reflect_them(store: Store) -> None:
    run = new_run(store)
    t0 = utcnow()
    first = store.node_runs.start(run, "load", node_type="builtin/read_csv@1", at=t0)
    assert first.attempt == 1
    store.node_runs.finish(
        run, "load", 1, status="failed", error={"message": "timeout"}, at=t0 + timedelta(seconds=1)
    )
    second = store.node_runs.start(run, "load", node_type="builtin/read_csv@1")
    assert second.attempt == 2
    store.node_runs.finish(run, "load", 2, status="succeeded", result_location="file:///r/load")
    store.node_runs.record(
        run, "mean", attempt=1, status="succeeded", cache_hit=True, result_location="mem://m"
    )
    store.node_runs.start(run, "plot")
    attempts = store.node_runs.list(run)
    assert [(a.node_id, a.attempt, a.status) for a in attempts] == [
        ("load", 1, "failed"),
        ("load", 2, "succeeded"),
        ("mean", 1, "succeeded"),
        ("plot", 1, "running"),
    ]
    assert attempts[0].error == {"message": "timeout"}
    assert attempts[0].finished_at == t0 + timedelta(seconds=1)
    assert {n: r.status for n, r in store.node_runs.latest(run).items()} == {
        "load": "succeeded",
        "mean": "succeeded",
        "plot": "running",
    }
    done = store.node_runs.succeeded(run)
    assert sorted(done) == ["load", "mean"]
    assert done["load"].result_location == "file:///r/load"
    assert done["mean"].cache_hit


def test_an_attempt_number_cannot_be_recorded_twice_and_finish_needs_a_start(store: Store) -> None:
    run = new_run(store)
    store.node_runs.start(run, "a", attempt=1)
    with pytest.raises(DuplicateAttemptError, match="attempt 1"):
        store.node_runs.start(run, "a", attempt=1)
    with pytest.raises(NotFoundError, match="start"):
        store.node_runs.finish(run, "b", 1, status="succeeded")


def test_record_many_inserts_a_batch(store: Store) -> None:
    run = new_run(store)
    now = utcnow()
    rows = [
        {
            "run_id": run,
            "node_id": f"n{i}",
            "attempt": 1,
            "status": "succeeded",
            "started_at": now,
            "finished_at": now,
        }
        for i in range(50)
    ]
    assert store.node_runs.record_many(rows) == 50
    assert store.node_runs.record_many([]) == 0
    assert len(store.node_runs.latest(run)) == 50
