"""Runs: recorded version, idempotency (also under concurrency), listing and pagination, status, recovery."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from engine.store import IdempotencyConflictError, NotFoundError, RunStateError, Store
from tests.engine.store.conformance import utcnow


def wf_doc(column: str = "x") -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "w",
        "nodes": {"m": {"type": "builtin/column_mean@1", "params": {"column": column}}},
        "outputs": {"mean": "m.value"},
    }


def test_run_of_a_stored_workflow_records_the_exact_version(store: Store) -> None:
    v1 = store.workflows.create(wf_doc())
    v2 = store.workflows.save(v1.workflow_id, wf_doc("y"), expected_version=1)
    latest = store.runs.create(workflow_id=v1.workflow_id, inputs={"path": "a.csv"}).run
    pinned = store.runs.create(workflow_id=v1.workflow_id, workflow_version=1).run
    assert (latest.workflow_version, latest.document_hash) == (2, v2.content_hash)
    assert (pinned.workflow_version, pinned.document_hash) == (1, v1.content_hash)
    got = store.runs.get(latest.id)
    assert got.inputs == {"path": "a.csv"}
    assert got.status == "queued"


def test_inline_document_run_keeps_the_document(store: Store) -> None:
    run = store.runs.create(document=wf_doc(), inputs={"a": 1}).run
    assert store.runs.get(run.id).document == wf_doc()
    assert run.workflow_id is None


def test_run_needs_a_source_and_an_existing_version(store: Store) -> None:
    with pytest.raises(ValueError, match="needs a workflow_id"):
        store.runs.create()
    with pytest.raises(NotFoundError):
        store.runs.create(workflow_id="missing")
    with pytest.raises(NotFoundError):
        store.runs.create(workflow_id="missing", document=wf_doc())
    v1 = store.workflows.create(wf_doc())
    with pytest.raises(NotFoundError, match="no version 3"):
        store.runs.create(workflow_id=v1.workflow_id, workflow_version=3)
    # A run of a stored workflow may execute a document of its own (a run to a node keeps its targeted copy).
    both = store.runs.create(workflow_id=v1.workflow_id, document=wf_doc()).run
    assert both.workflow_id == v1.workflow_id and both.workflow_version == 1
    assert store.runs.get(both.id).document == wf_doc()


def test_same_idempotency_key_returns_the_same_run(store: Store) -> None:
    v1 = store.workflows.create(wf_doc())
    first = store.runs.create(workflow_id=v1.workflow_id, inputs={"a": 1}, idempotency_key="k1", owner="ada")
    again = store.runs.create(workflow_id=v1.workflow_id, inputs={"a": 1}, idempotency_key="k1", owner="ada")
    assert first.created and not again.created
    assert again.run.id == first.run.id
    # The key is per owner: another owner may use the same key for its own run.
    other = store.runs.create(workflow_id=v1.workflow_id, inputs={"a": 1}, idempotency_key="k1", owner="bob")
    assert other.created and other.run.id != first.run.id
    assert len(store.runs.list().items) == 2


def test_reusing_a_key_for_a_different_request_is_an_error(store: Store) -> None:
    v1 = store.workflows.create(wf_doc())
    store.runs.create(workflow_id=v1.workflow_id, inputs={"a": 1}, idempotency_key="k1")
    with pytest.raises(IdempotencyConflictError, match="k1"):
        store.runs.create(workflow_id=v1.workflow_id, inputs={"a": 2}, idempotency_key="k1")


def test_idempotent_creation_survives_a_new_version_saved_in_between(store: Store) -> None:
    v1 = store.workflows.create(wf_doc())
    first = store.runs.create(workflow_id=v1.workflow_id, idempotency_key="k").run
    store.workflows.save(v1.workflow_id, wf_doc("y"), expected_version=1)
    retry = store.runs.create(workflow_id=v1.workflow_id, idempotency_key="k")
    assert (retry.created, retry.run.id, retry.run.workflow_version) == (False, first.id, 1)


def test_two_threads_with_one_key_create_one_run(store: Store) -> None:
    v1 = store.workflows.create(wf_doc())
    barrier = threading.Barrier(2)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def submit(key: str) -> None:
        try:
            barrier.wait()
            created = store.runs.create(workflow_id=v1.workflow_id, inputs={"n": 1}, idempotency_key=key)
            results.append((created.run.id, created.created))
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    for round_ in range(5):  # several rounds make an unlucky interleaving likely to show up
        results.clear()
        threads = [threading.Thread(target=submit, args=(f"race-{round_}",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        assert len({run_id for run_id, _ in results}) == 1
        assert sorted(created for _, created in results) == [False, True]
    assert len(store.runs.list(workflow_id=v1.workflow_id).items) == 5


def test_list_filters_and_paginates_newest_first(store: Store) -> None:
    a = store.workflows.create(wf_doc()).workflow_id
    b = store.workflows.create(wf_doc()).workflow_id
    t0 = utcnow()
    made = []
    for i in range(7):
        run = store.runs.create(workflow_id=a, inputs={"i": i}).run
        if i % 2:
            store.runs.update_status(run.id, "succeeded")
        made.append(run.id)
    store.runs.create(workflow_id=b)
    page = store.runs.list(workflow_id=a, limit=3)
    ids = [r.id for r in page.items]
    while page.next_cursor:
        page = store.runs.list(workflow_id=a, limit=3, cursor=page.next_cursor)
        ids += [r.id for r in page.items]
    assert ids == list(reversed(made))
    done = store.runs.list(workflow_id=a, status="succeeded").items
    assert [r.id for r in done] == [made[5], made[3], made[1]]
    assert len(store.runs.list(status=["queued", "succeeded"]).items) == 8
    assert len(store.runs.list(created_after=t0, workflow_id=b).items) == 1
    assert store.runs.list(owner="nobody").items == []
    with pytest.raises(ValueError, match="cursor"):
        store.runs.list(cursor="garbage!")


def test_status_changes_set_timestamps_outputs_and_errors(store: Store) -> None:
    run = store.runs.create(document=wf_doc()).run
    running = store.runs.update_status(run.id, "running", coordinator="coord-1")
    assert running.started_at is not None and running.finished_at is None
    assert running.coordinator == "coord-1"
    done = store.runs.update_status(run.id, "succeeded", outputs={"mean": 2.5}, only_from={"running"})
    assert done.finished_at is not None and done.started_at == running.started_at
    assert store.runs.get(run.id).outputs == {"mean": 2.5}
    with pytest.raises(RunStateError, match="succeeded"):
        store.runs.update_status(run.id, "cancelled", only_from={"queued", "running"})
    assert store.runs.get(run.id).status == "succeeded"
    failed = store.runs.update_status(
        store.runs.create(document=wf_doc()).run.id, "failed", error={"node": "m", "message": "boom"}
    )
    assert failed.error == {"node": "m", "message": "boom"}
    with pytest.raises(NotFoundError):
        store.runs.update_status("missing", "running")


def test_stale_runs_are_found_and_claimed_once(store: Store) -> None:
    now = utcnow()
    alive = store.runs.create(document=wf_doc()).run
    dead = store.runs.create(document=wf_doc()).run
    finished = store.runs.create(document=wf_doc()).run
    store.runs.update_status(alive.id, "running")
    store.runs.update_status(dead.id, "running")
    store.runs.heartbeat(alive.id, "c1", at=now)
    store.runs.heartbeat(dead.id, "c2", at=now - timedelta(minutes=5))
    store.runs.heartbeat(finished.id, at=now - timedelta(minutes=5))
    store.runs.update_status(finished.id, "succeeded", at=now - timedelta(minutes=5))
    stale = store.runs.stale(timedelta(seconds=30), now=now)
    assert [r.id for r in stale] == [dead.id]
    assert store.runs.claim(dead.id, "sweeper-1", timedelta(seconds=30), now=now)
    assert not store.runs.claim(dead.id, "sweeper-2", timedelta(seconds=30), now=now)
    assert store.runs.get(dead.id).coordinator == "sweeper-1"
    assert not store.runs.claim(alive.id, "sweeper-1", timedelta(seconds=30), now=now)
    with pytest.raises(NotFoundError):
        store.runs.heartbeat("missing")


def test_deleting_a_run_deletes_its_events_and_node_runs(store: Store) -> None:
    from engine.store import NewEvent

    run = store.runs.create(document=wf_doc()).run
    store.events.append(run.id, [NewEvent("run.queued")])
    store.node_runs.start(run.id, "m")
    store.runs.delete(run.id)
    with pytest.raises(NotFoundError):
        store.runs.get(run.id)
    assert store.events.read(run.id) == []
    assert store.node_runs.list(run.id) == []
