"""Webhooks on Redis (ADR 024) beyond their conformance module (`conformance/test_webhooks.py`, which runs on Redis
through `tests/engine/store/conftest.py`): the events found match SQLite's when many share a time and pages are
small, concurrent workers on several connections claim each delivery once, an expired lease frees a delivery, a
leased one stays leased through its webhook being disabled and enabled again, imported events are found too, and
a deleted webhook leaves no key behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from engine.store import DeliveryStatus, NewEvent, Store
from engine.store.redis import RedisStore
from engine.store.redis import webhooks as redis_webhooks
from engine.store.shares import Audience
from engine.store.webhooks import NewDelivery
from nodes.ids import RunId
from nodes.states import EventType
from tests.engine.store.redis_support import open_same, redis_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOC = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}}
TYPES = [EventType.RUN_STARTED, EventType.NODE_FAILED, EventType.RUN_FAILED, EventType.RUN_SUCCEEDED]


@pytest.fixture
def rstore() -> Iterator[RedisStore]:
    with redis_store() as made:
        yield made


def _subscribe(store: Store, owner: str, types: list[EventType], workflow_id: str | None = None) -> str:
    sub_id = f"hook-{owner}-{len(types)}-{workflow_id}"
    store.webhooks.create(
        subscription_id=sub_id,
        owner=owner,
        tenant_id="default",
        url="http://127.0.0.1:9/",
        event_types=types,
        secret_ciphertext="c",
        secret_wrapped_key="w",
        secret_key_id="k",
        workflow_id=workflow_id,
    )
    return sub_id


def _scans(store: Store) -> list[object]:
    """What a worker's scans find, 4 events at a time, over events many of which share a creation time."""
    wf = store.workflows.create(DOC, workflow_id="wf1", owner="ada").workflow_id
    for i in range(12):
        run_id = RunId(f"r{(i * 5) % 12:02d}")  # created out of id order
        store.runs.create(
            workflow_id=wf if i % 3 else None, document=DOC, owner=("ada", "bob")[i % 4 == 0], run_id=run_id
        )
        events = [
            NewEvent(TYPES[(i + n) % 4], created_at=T0 + timedelta(seconds=(i + n) % 3)) for n in range(3)
        ]
        store.events.append(run_id, events)
    seen: list[object] = []
    for types, workflow_id in ((TYPES, None), (TYPES[1:3], None), (TYPES, "wf1")):
        sub_id = _subscribe(store, "ada", types, workflow_id)
        sub = store.webhooks.get(sub_id)
        pages = []
        while page := store.webhooks.new_events(
            sub, Audience("ada", "default"), since=T0 - timedelta(seconds=1), limit=4
        ):
            pages.append(
                [(p.event.run_id, p.event.seq, str(p.event.type), p.workflow_id, p.created_at) for p in page]
            )
            store.webhooks.enqueue(
                sub_id, [NewDelivery(str(p.event.type), {}, p.event.run_id, p.event.seq) for p in page]
            )
        seen.append(pages)
    return seen


def test_new_events_match_sqlite_with_ties_and_small_pages(
    rstore: RedisStore, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis reads its index of notified events by time, a few entries at a time here (so pages end inside a read
    # and inside a run of equal times), and sorts ties by run and number itself (ADR 024).
    monkeypatch.setattr(redis_webhooks, "_CHUNK", 3)
    assert _scans(cast(Store, rstore)) == _scans(sqlite_store)


def test_concurrent_workers_claim_each_delivery_once(rstore: RedisStore) -> None:
    sub_id = _subscribe(cast(Store, rstore), "ada", TYPES)
    rstore.webhooks.enqueue(sub_id, [NewDelivery("ping", {}, id=f"d{i:02d}") for i in range(60)])
    stores = [rstore, *(open_same(rstore.connect_url) for _ in range(3))]
    claimed: list[str] = []

    def work(store: RedisStore) -> None:
        while taken := store.webhooks.claim_due(limit=7):
            claimed.extend(d.id for d in taken)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores[1:]:
            s.close()
    assert sorted(claimed) == [f"d{i:02d}" for i in range(60)]


def test_an_expired_lease_frees_the_delivery(rstore: RedisStore) -> None:
    sub_id = _subscribe(cast(Store, rstore), "ada", TYPES)
    rstore.webhooks.enqueue(sub_id, [NewDelivery("ping", {}, id="d1")])
    assert [d.id for d in rstore.webhooks.claim_due(lease_s=0.001)] == ["d1"]
    time.sleep(0.01)  # the worker died: its lease ran out
    assert [d.id for d in rstore.webhooks.claim_due()] == ["d1"]
    assert rstore.webhooks.claim_due() == []


def test_a_deleted_webhook_leaves_no_key(rstore: RedisStore) -> None:
    run_id = rstore.runs.create(document=DOC, owner="ada").run.id
    rstore.events.append(run_id, [NewEvent(EventType.RUN_FAILED)])
    before = set(rstore.client.scan_iter(match=f"{rstore.prefix}:*"))
    sub_id = _subscribe(cast(Store, rstore), "ada", TYPES)
    sub = rstore.webhooks.get(sub_id)
    (pending,) = rstore.webhooks.new_events(sub, Audience("ada", "default"), since=T0)
    rstore.webhooks.enqueue(sub_id, [NewDelivery("run.failed", {}, run_id, pending.event.seq)])
    rstore.webhooks.enqueue(sub_id, [NewDelivery("ping", {})])
    rstore.webhooks.update(sub_id, {"enabled": False})
    rstore.webhooks.update(sub_id, {"enabled": True})
    assert len(rstore.webhooks.claim_due()) == 2
    rstore.webhooks.delete(sub_id)
    assert set(rstore.client.scan_iter(match=f"{rstore.prefix}:*")) == before


def test_a_leased_delivery_stays_leased_when_its_webhook_is_enabled_again(rstore: RedisStore) -> None:
    sub_id = _subscribe(cast(Store, rstore), "ada", TYPES)
    rstore.webhooks.enqueue(sub_id, [NewDelivery("ping", {}, id="d1"), NewDelivery("ping", {}, id="d2")])
    assert [d.id for d in rstore.webhooks.claim_due(limit=1)] == ["d1"]
    rstore.webhooks.update(sub_id, {"enabled": False})
    rstore.webhooks.update(sub_id, {"enabled": True})  # puts its scheduled deliveries back, d1 included
    assert [d.id for d in rstore.webhooks.claim_due()] == ["d2"]
    assert rstore.webhooks.claim_due() == []
    rstore.webhooks.record_attempt("d1", status=DeliveryStatus.SCHEDULED, status_code=500, next_attempt_at=T0)
    assert [d.id for d in rstore.webhooks.claim_due()] == ["d1"]


def test_imported_events_are_found_and_leave_with_their_run(rstore: RedisStore) -> None:
    # An NDJSON import or a copy between stores writes events through store.bulk, which keeps the index too.
    sub = rstore.webhooks.get(_subscribe(cast(Store, rstore), "ada", TYPES))
    before = set(rstore.client.scan_iter(match=f"{rstore.prefix}:*"))
    run_id = rstore.runs.create(document=DOC, owner="ada").run.id
    row = {"run_id": run_id, "seq": 1, "type": "run.failed", "node_id": None, "payload": {}, "created_at": T0}
    rstore.bulk.put("events", [row])
    (found,) = rstore.webhooks.new_events(sub, Audience("ada", "default"), since=T0 - timedelta(seconds=1))
    assert (found.event.run_id, found.event.seq, found.created_at) == (run_id, 1, T0)
    rstore.runs.delete(run_id)
    assert set(rstore.client.scan_iter(match=f"{rstore.prefix}:*")) == before
