"""Outbound webhooks in the store (issue 19), on every backend: subscriptions with a sealed secret, the
events each may be given (types, workflow, who may see the run), at most one delivery per event, leases,
attempts, dead letters and redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.secrets import Keyring
from engine.secrets.keys import new_master_key
from engine.store import DeliveryStatus, NewEvent, NotFoundError, Store
from engine.store.shares import Audience
from engine.store.webhooks import NewDelivery
from engine.webhooks.service import WebhookService, cloudevent_of, open_secret
from nodes.ids import WorkflowId
from nodes.states import EventType
from tests.engine.store import redis_support, sql_support
from tests.engine.store.conformance import utcnow

KEYS = Keyring([new_master_key()], "a test keyring")
WANTED = [EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.NODE_FAILED]


def stored_rows(store: Store, table: str) -> list[Any]:
    """The rows of `table` as the store's database holds them (below the protocol)."""
    below: Any = redis_support if store.backend == "redis" else sql_support
    return list(below.stored_rows(store, table))


def _service(store: Store) -> WebhookService:
    return WebhookService(store, KEYS, allow=["127.0.0.1"])


def _run(store: Store, owner: str, workflow: str | None, *types: EventType) -> str:
    if workflow is None:
        run = store.runs.create(document={"name": "inline", "nodes": {}}, owner=owner).run
    else:
        run = store.runs.create(workflow_id=WorkflowId(workflow), owner=owner).run
    store.events.append(
        run.id, [NewEvent(type=t, node_id="n" if t.startswith("node.") else None) for t in types]
    )
    return run.id


def test_a_subscription_keeps_its_secret_sealed_and_changes(store: Store) -> None:
    alice = store.users.create("alice")
    created = _service(store).create(
        owner=alice.id,
        tenant_id=alice.tenant_id,
        url="http://127.0.0.1:9/hook",
        event_types=[EventType.RUN_FAILED, EventType.RUN_FAILED, EventType.ANOMALY_DETECTED],
        description="ops",
        actor="alice",
    )
    sub = created.subscription
    assert created.secret.startswith("whsec_")
    assert sub.event_types == [EventType.RUN_FAILED, EventType.ANOMALY_DETECTED]  # distinct, in order
    stored = stored_rows(store, "webhook_subscriptions")
    assert len(stored) == 1 and created.secret not in repr(stored)
    assert open_secret(store.webhooks.get(sub.id), KEYS) == created.secret
    assert [s.id for s in store.webhooks.list(owner=alice.id)] == [sub.id]
    assert store.webhooks.list(owner="someone-else") == []
    changed = store.webhooks.update(sub.id, {"enabled": False, "workflow_id": "wf1"})
    assert (changed.enabled, changed.workflow_id, changed.description) == (False, "wf1", "ops")
    assert store.webhooks.list(enabled_only=True) == []
    with pytest.raises(ValueError, match=r"\['secret_key_id'\] cannot be changed"):
        store.webhooks.update(sub.id, {"secret_key_id": "x"})
    store.webhooks.delete(sub.id)
    with pytest.raises(NotFoundError, match="GET /v1/webhooks"):
        store.webhooks.get(sub.id)
    with pytest.raises(NotFoundError):
        store.webhooks.delete(sub.id)


def test_new_events_follow_types_workflow_and_who_may_see_the_run(store: Store) -> None:
    acme = store.tenants.create("acme")
    alice = store.users.create("alice", tenant_id=acme.id)
    boss = store.users.create("boss", tenant_id=acme.id, role="owner")
    mallory = store.users.create("mallory")  # another tenant
    wf = store.workflows.create({"name": "w", "nodes": {}}, owner=alice.id).workflow_id
    other_wf = store.workflows.create({"name": "v", "nodes": {}}, owner=alice.id).workflow_id
    before = utcnow() - timedelta(seconds=1)
    sub = (
        _service(store)
        .create(owner=alice.id, tenant_id=acme.id, url="http://127.0.0.1:9/", event_types=WANTED)
        .subscription
    )
    mine = _run(store, alice.id, wf, EventType.RUN_STARTED, EventType.NODE_FAILED, EventType.RUN_FAILED)
    _run(store, alice.id, other_wf, EventType.RUN_SUCCEEDED)
    _run(store, mallory.id, None, EventType.RUN_FAILED)
    bosses = _run(store, boss.id, None, EventType.RUN_SUCCEEDED)
    own = Audience(alice.id, acme.id)
    found = store.webhooks.new_events(sub, own, since=before)
    assert [(p.event.run_id, p.event.type) for p in found][:2] == [
        (mine, EventType.NODE_FAILED),
        (mine, EventType.RUN_FAILED),
    ]
    assert len(found) == 3 and found[0].workflow_id == wf  # run.started is not wanted; mallory's is unseen
    # The tenant's owner-like audience sees the boss's run too; a workflow filter keeps only its runs.
    assert bosses in {
        p.event.run_id
        for p in store.webhooks.new_events(sub, Audience(alice.id, acme.id, True), since=before)
    }
    only_wf = store.webhooks.update(sub.id, {"workflow_id": wf})
    assert {p.event.run_id for p in store.webhooks.new_events(only_wf, own, since=before)} == {mine}
    assert store.webhooks.new_events(only_wf, own, since=utcnow() + timedelta(seconds=5)) == []
    # Recorded once: the next scan does not offer them again, and enqueueing them again adds nothing.
    offered = [NewDelivery(p.event.type, cloudevent_of(p), p.event.run_id, p.event.seq) for p in found]
    later = utcnow()
    store.webhooks.enqueue(sub.id, offered, cursor_at=later)
    store.webhooks.enqueue(sub.id, offered, cursor_at=later - timedelta(minutes=1))
    assert len(store.webhooks.deliveries(sub.id)) == 3
    assert store.webhooks.new_events(only_wf, own, since=before) == []
    assert store.webhooks.get(sub.id).cursor_at == later  # the cursor never moves back
    bodies = {d.event_type: d.body for d in store.webhooks.deliveries(sub.id)}
    body = bodies[EventType.NODE_FAILED]
    assert (body["type"], body["rayweaveworkflow"], body["subject"]) == ("io.rayweave.node.failed", wf, "n")
    # Anomalies (issue 20) are recorded after the run's final event; a webhook that wants them gets them.
    store.events.append(mine, [NewEvent(type=EventType.ANOMALY_DETECTED, payload={"kind": "duration"})])
    anomalies = store.webhooks.update(sub.id, {"event_types": [EventType.ANOMALY_DETECTED]})
    (anomaly,) = store.webhooks.new_events(anomalies, own, since=before)
    assert (anomaly.event.run_id, anomaly.event.payload["kind"]) == (mine, "duration")


def test_claims_attempts_dead_letters_and_redelivery(store: Store) -> None:
    alice = store.users.create("alice")
    service = _service(store)
    sub = service.create(
        owner=alice.id, tenant_id=alice.tenant_id, url="http://127.0.0.1:9/", event_types=WANTED
    )
    sub_id = sub.subscription.id
    store.webhooks.enqueue(sub_id, [NewDelivery("io.rayweave.webhook.ping", {"id": "p1"}, id="d1")])
    claimed = store.webhooks.claim_due(lease_s=60)
    assert [d.id for d in claimed] == ["d1"]
    assert store.webhooks.claim_due() == []  # leased: another worker leaves it alone
    retry_at = utcnow() + timedelta(seconds=30)
    row = store.webhooks.record_attempt(
        "d1", status=DeliveryStatus.SCHEDULED, status_code=503, error="busy", next_attempt_at=retry_at
    )
    assert (row.attempts, row.status, row.last_status_code, row.lease_until) == (1, "scheduled", 503, None)
    assert store.webhooks.claim_due() == []  # not due before its next attempt
    dead = store.webhooks.record_attempt("d1", status=DeliveryStatus.DEAD, status_code=None, error="gone")
    assert (dead.attempts, dead.status, dead.next_attempt_at) == (2, "dead", None)
    assert [d.id for d in store.webhooks.deliveries(sub_id, status=DeliveryStatus.DEAD)] == ["d1"]
    assert store.webhooks.deliveries(sub_id, status=DeliveryStatus.DELIVERED) == []
    again = store.webhooks.redeliver(sub_id, "d1")
    assert (again.status, again.attempts, again.last_error) == ("scheduled", 0, "")
    # A disabled webhook's deliveries wait.
    store.webhooks.update(sub_id, {"enabled": False})
    assert store.webhooks.claim_due() == []
    store.webhooks.update(sub_id, {"enabled": True})
    assert [d.id for d in store.webhooks.claim_due()] == ["d1"]
    done = store.webhooks.record_attempt("d1", status=DeliveryStatus.DELIVERED, status_code=204)
    assert done.delivered_at is not None and done.status == "delivered"
    other = service.create(
        owner=alice.id, tenant_id=alice.tenant_id, url="http://127.0.0.1:9/", event_types=WANTED
    )
    with pytest.raises(NotFoundError, match="delivery 'd1' of webhook"):
        store.webhooks.get_delivery(other.subscription.id, "d1")
    with pytest.raises(NotFoundError):
        store.webhooks.redeliver(other.subscription.id, "d1")
    store.webhooks.delete(sub_id)
    assert stored_rows(store, "webhook_deliveries") == []


def test_a_restarted_worker_neither_loses_nor_repeats_events(store: Store) -> None:
    from engine.webhooks.delivery import Deliverer
    from engine.webhooks.worker import WebhookWorker

    alice = store.users.create("alice")
    own = Audience(alice.id, alice.tenant_id)
    sub_id = (
        _service(store)
        .create(owner=alice.id, tenant_id=alice.tenant_id, url="http://127.0.0.1:9/", event_types=WANTED)
        .subscription.id
    )

    def worker() -> WebhookWorker:  # a new one each time: what a server restart starts with is the store
        return WebhookWorker(
            store, Deliverer(store, lambda: KEYS), lambda user: own if user == alice.id else None
        )

    first = _run(store, alice.id, None, EventType.RUN_FAILED)
    assert worker().scan(store.webhooks.get(sub_id)) == 1
    second = _run(store, alice.id, None, EventType.NODE_FAILED, EventType.RUN_FAILED)  # while "down"
    restarted = worker()
    assert restarted.scan(store.webhooks.get(sub_id)) == 2
    assert restarted.scan(store.webhooks.get(sub_id)) == 0
    recorded = sorted((d.run_id, d.seq) for d in store.webhooks.deliveries(sub_id))
    assert recorded == sorted([(first, 1), (second, 1), (second, 2)])
