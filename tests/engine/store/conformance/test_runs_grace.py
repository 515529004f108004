"""Runs: a heartbeat at creation, and the start-up grace of queued runs in `stale` and `claim`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.store import Store
from tests.engine.store.conformance import utcnow

STALE = timedelta(seconds=10)
GRACE = timedelta(seconds=60)


def wf_doc() -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "w",
        "nodes": {"m": {"type": "builtin/column_mean@1", "params": {"column": "x"}}},
        "outputs": {"mean": "m.value"},
    }


def test_create_can_record_a_first_heartbeat(store: Store) -> None:
    plain = store.runs.create(document=wf_doc()).run
    owned = store.runs.create(document=wf_doc(), heartbeat=True).run
    assert plain.heartbeat_at is None
    assert owned.heartbeat_at is not None and owned.heartbeat_at == owned.created_at
    assert store.runs.get(owned.id).heartbeat_at is not None


def test_queued_runs_count_as_stale_only_after_their_grace(store: Store) -> None:
    created = utcnow()
    queued = store.runs.create(document=wf_doc(), heartbeat=True, at=created).run
    running = store.runs.create(document=wf_doc(), heartbeat=True, at=created).run
    store.runs.update_status(running.id, "running", at=created)

    within = created + timedelta(seconds=30)  # past the stale limit, within the grace
    assert [r.id for r in store.runs.stale(STALE, now=within, queued_grace=GRACE)] == [running.id]
    assert not store.runs.claim(queued.id, "sweeper", STALE, now=within, queued_grace=GRACE)
    # Without a grace a queued run is stale like any other.
    assert {r.id for r in store.runs.stale(STALE, now=within)} == {queued.id, running.id}

    after = created + timedelta(seconds=61)
    assert {r.id for r in store.runs.stale(STALE, now=after, queued_grace=GRACE)} == {queued.id, running.id}
    assert store.runs.claim(queued.id, "sweeper", STALE, now=after, queued_grace=GRACE)


def test_a_claim_requeues_the_run_and_restarts_its_grace(store: Store) -> None:
    created = utcnow()
    run = store.runs.create(document=wf_doc(), heartbeat=True, at=created).run
    store.runs.update_status(run.id, "running", at=created)
    claimed_at = created + timedelta(seconds=20)
    assert store.runs.claim(run.id, "sweeper-1", STALE, now=claimed_at, queued_grace=GRACE)
    row = store.runs.get(run.id)
    assert (row.status, row.coordinator, row.heartbeat_at) == ("queued", "sweeper-1", claimed_at)
    assert row.started_at is not None  # it did start once; resuming does not forget that
    # Its new coordinator is slow to start: another sweep past the stale limit leaves it alone ...
    later = claimed_at + timedelta(seconds=30)
    assert not store.runs.claim(run.id, "sweeper-2", STALE, now=later, queued_grace=GRACE)
    # ... and once the coordinator starts it, the usual stale limit applies again.
    store.runs.heartbeat(run.id, "coordinator", at=later)
    store.runs.update_status(run.id, "running", at=later)
    assert store.runs.get(run.id).started_at == row.started_at
    assert store.runs.claim(run.id, "sweeper-2", STALE, now=later + timedelta(seconds=11), queued_grace=GRACE)
