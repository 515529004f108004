"""Outbound webhooks as stored: subscriptions (with their sealed signing secret and event cursor) and deliveries.

The repository never sees a signing secret in the clear (`engine.webhooks.service` seals and opens it). The
delivery worker (`engine.webhooks.worker`) asks it for the events a subscription has not been given yet
(`new_events`), records them as deliveries (`enqueue`, which also moves the subscription's cursor), claims the
due ones (`claim_due`, a lease so that several API replicas never send one at the same time) and records each
attempt (`record_attempt`). A delivery in `DeliveryStatus.DEAD` is the dead letter; `redeliver` schedules it again.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.execution.events import Event
from engine.store.base import Repository, insert_ignoring_duplicates
from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError
from engine.store.events import event_from_row
from engine.store.models import (
    NOTIFIED_EVENT_TYPES,
    DeliveryStatus,
    Run,
    WebhookDelivery,
    WebhookSubscription,
    table_of,
)
from engine.store.models import Event as EventRow
from engine.store.shares import Audience, visible_runs

#: The fields of a subscription `update` may change.
UPDATABLE = frozenset({"url", "event_types", "workflow_id", "description", "enabled"})


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to record: the event (`run_id`, `seq`; None for a ping), its type and the CloudEvent to send."""

    event_type: str
    body: Mapping[str, Any]
    run_id: str | None = None
    seq: int | None = None
    id: str | None = None


@dataclass(frozen=True)
class PendingEvent:
    """An event a subscription has not been given yet, with the workflow of its run (None for inline runs)."""

    event: Event
    workflow_id: str | None
    created_at: datetime


def _missing(subscription_id: str) -> NotFoundError:
    return NotFoundError(f"webhook {subscription_id!r} does not exist; GET /v1/webhooks lists yours")


def delivery_fields(subscription_id: str, delivery: NewDelivery, now: datetime) -> dict[str, Any]:
    """The fields of a new delivery record of `delivery`, due `now` (as every backend stores it)."""
    return {
        "id": delivery.id or new_id(),
        "subscription_id": subscription_id,
        "run_id": delivery.run_id,
        "seq": delivery.seq,
        "event_type": delivery.event_type,
        "body": dict(delivery.body),
        "status": DeliveryStatus.SCHEDULED.value,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
        "updated_at": now,
    }


class WebhookCreation:
    """Making a subscription record, the same on every backend (`WebhookRepository` on SQL,
    `engine.store.redis.webhooks` on Redis); a backend stores it (`_store_new`)."""

    def create(
        self,
        *,
        subscription_id: str,
        owner: str,
        tenant_id: str,
        url: str,
        event_types: Sequence[str],
        secret_ciphertext: str,
        secret_wrapped_key: str,
        secret_key_id: str,
        workflow_id: str | None = None,
        description: str = "",
        enabled: bool = True,
        actor: str = "",
    ) -> WebhookSubscription:
        """Store a new subscription; its cursor starts now (it is given events from its creation on)."""
        now = utcnow()
        row = WebhookSubscription(
            id=subscription_id,
            owner=owner,
            tenant_id=tenant_id,
            url=url,
            event_types=builtins.list(event_types),
            workflow_id=workflow_id,
            description=description,
            enabled=enabled,
            secret_ciphertext=secret_ciphertext,
            secret_wrapped_key=secret_wrapped_key,
            secret_key_id=secret_key_id,
            cursor_at=now,
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        return self._store_new(row)

    def _store_new(self, row: WebhookSubscription) -> WebhookSubscription:
        raise NotImplementedError


class WebhookRepository(WebhookCreation, Repository):
    """Webhook subscriptions and their deliveries."""

    def _store_new(self, row: WebhookSubscription) -> WebhookSubscription:
        with self.session() as session:
            session.add(row)
        return row

    def get(self, subscription_id: str) -> WebhookSubscription:
        """One subscription; `NotFoundError` naming it."""
        with self.reading() as session:
            row = session.get(WebhookSubscription, subscription_id)
        if row is None:
            raise _missing(subscription_id)
        return row

    def list(
        self, *, owner: str | None = None, enabled_only: bool = False
    ) -> builtins.list[WebhookSubscription]:
        """Subscriptions of one owner (every owner's with None), oldest first."""
        query = select(WebhookSubscription)
        if owner is not None:
            query = query.where(WebhookSubscription.owner == owner)
        if enabled_only:
            query = query.where(col(WebhookSubscription.enabled).is_(True))
        order = (col(WebhookSubscription.created_at), col(WebhookSubscription.id))
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(*order)))

    def update(self, subscription_id: str, changes: Mapping[str, Any]) -> WebhookSubscription:
        """Change some of `UPDATABLE` (a `workflow_id` of None removes the filter); `NotFoundError`, or
        `ValueError` naming a field that cannot change."""
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise ValueError(f"webhook fields {unknown} cannot be changed; changeable: {sorted(UPDATABLE)}")
        with self.session() as session:
            row = session.get(WebhookSubscription, subscription_id)
            if row is None:
                raise _missing(subscription_id)
            for name, value in changes.items():
                setattr(row, name, builtins.list(value) if name == "event_types" else value)
            row.updated_at = utcnow()
            session.add(row)
            session.flush()
            return row

    def delete(self, subscription_id: str) -> None:
        """Remove a subscription and its deliveries; `NotFoundError` when there is none."""
        deliveries, subs = table_of(WebhookDelivery), table_of(WebhookSubscription)
        with self.writing() as conn:
            conn.execute(sa.delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
            if conn.execute(sa.delete(subs).where(subs.c.id == subscription_id)).rowcount == 0:
                raise _missing(subscription_id)

    def new_events(
        self, subscription: WebhookSubscription, audience: Audience, *, since: datetime, limit: int = 500
    ) -> builtins.list[PendingEvent]:
        """Events created after `since` that the subscription wants (its types, its workflow), of runs the
        `audience` may see, and that it has no delivery of yet; oldest first, at most `limit`."""
        types = [t for t in subscription.event_types if t in NOTIFIED_EVENT_TYPES]
        if not types:
            return []
        known = select(WebhookDelivery.id).where(
            WebhookDelivery.subscription_id == subscription.id,
            col(WebhookDelivery.run_id) == col(EventRow.run_id),
            col(WebhookDelivery.seq) == col(EventRow.seq),
        )
        query = (
            select(EventRow, Run.workflow_id)
            .join(Run, col(Run.id) == col(EventRow.run_id))
            # The index's own predicate first: SQLite uses a partial index only when the query repeats it.
            .where(col(EventRow.type).in_([str(t) for t in NOTIFIED_EVENT_TYPES]))
            .where(col(EventRow.type).in_(types), col(EventRow.created_at) > since)
            .where(visible_runs(audience), ~sa.exists(known))
        )
        if subscription.workflow_id is not None:
            query = query.where(col(Run.workflow_id) == subscription.workflow_id)
        query = query.order_by(col(EventRow.created_at), col(EventRow.run_id), col(EventRow.seq)).limit(limit)
        with self.reading() as session:
            rows = builtins.list(session.exec(query))
        return [PendingEvent(event_from_row(row), workflow_id, row.created_at) for row, workflow_id in rows]

    def enqueue(
        self, subscription_id: str, deliveries: Sequence[NewDelivery], *, cursor_at: datetime | None = None
    ) -> int:
        """Record deliveries due now (an event already recorded for the subscription is skipped: at most one
        delivery per event and webhook) and move the cursor forward to `cursor_at`, in one transaction.
        Returns how many rows were offered."""
        now = utcnow()
        rows = [delivery_fields(subscription_id, d, now) for d in deliveries]
        subs = table_of(WebhookSubscription)
        with self.writing() as conn:
            if rows:
                conn.execute(insert_ignoring_duplicates(conn.dialect.name, table_of(WebhookDelivery)), rows)
            if cursor_at is not None:
                conn.execute(
                    sa.update(subs)
                    .where(subs.c.id == subscription_id, subs.c.cursor_at < cursor_at)
                    .values(cursor_at=cursor_at)
                )
        return len(rows)

    def claim_due(self, *, limit: int = 20, lease_s: float = 60.0) -> builtins.list[WebhookDelivery]:
        """Take up to `limit` scheduled deliveries of enabled webhooks whose time has come, holding each for
        `lease_s` (a worker that dies mid-send leaves it to be taken again after that)."""
        now = utcnow()
        table, subs = table_of(WebhookDelivery), table_of(WebhookSubscription)
        free = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
        due = (
            sa.select(table.c.id)
            .join(subs, subs.c.id == table.c.subscription_id)
            .where(table.c.status == DeliveryStatus.SCHEDULED.value, table.c.next_attempt_at <= now, free)
            .where(subs.c.enabled.is_(True))
            .order_by(table.c.next_attempt_at)
            .limit(limit)
        )
        # Looked for first without the write lock: the worker asks at every run notice (each stored batch of
        # events), nearly always for nothing, and on SQLite a write transaction would hold off the run's sink.
        with self.reading() as session:
            if not session.connection().execute(due.limit(1)).first():
                return []
        claimed: builtins.list[str] = []
        with self.writing() as conn:
            for delivery_id in conn.execute(due).scalars().all():
                taken = conn.execute(
                    sa.update(table)
                    .where(table.c.id == delivery_id, table.c.status == DeliveryStatus.SCHEDULED.value, free)
                    .values(lease_until=now + timedelta(seconds=lease_s))
                )
                if taken.rowcount:
                    claimed.append(delivery_id)
        if not claimed:
            return []
        with self.reading() as session:
            query = select(WebhookDelivery).where(col(WebhookDelivery.id).in_(claimed))
            return builtins.list(session.exec(query.order_by(col(WebhookDelivery.next_attempt_at))))

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str = "",
        next_attempt_at: datetime | None = None,
    ) -> WebhookDelivery:
        """Record one attempt: one more attempt, its HTTP status (None without an answer) and error, the new
        state and, for `SCHEDULED`, when to try again; the lease is released."""
        now = utcnow()
        with self.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                raise NotFoundError(
                    f"webhook delivery {delivery_id!r} does not exist (its webhook was deleted?)"
                )
            row.attempts += 1
            row.status = status.value
            row.last_status_code = status_code
            row.last_error = error
            row.next_attempt_at = next_attempt_at if status is DeliveryStatus.SCHEDULED else None
            row.lease_until = None
            row.updated_at = now
            if status is DeliveryStatus.DELIVERED:
                row.delivered_at = now
            session.add(row)
            session.flush()
            return row

    def deliveries(
        self, subscription_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> builtins.list[WebhookDelivery]:
        """A subscription's deliveries, newest first (`status` DEAD: its dead letters)."""
        query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status.value)
        order = (col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(*order).limit(limit)))

    def get_delivery(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """One delivery of a subscription; `NotFoundError` naming it."""
        with self.reading() as session:
            row = session.get(WebhookDelivery, delivery_id)
        if row is None or row.subscription_id != subscription_id:
            raise NotFoundError(
                f"delivery {delivery_id!r} of webhook {subscription_id!r} does not exist; "
                f"GET /v1/webhooks/{subscription_id}/deliveries lists them"
            )
        return row

    def redeliver(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """Schedule a delivery again, now, with a fresh count of attempts (a dead letter comes back to life)."""
        self.get_delivery(subscription_id, delivery_id)
        with self.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                raise _missing(subscription_id)
            now = utcnow()
            row.status, row.attempts, row.next_attempt_at = DeliveryStatus.SCHEDULED.value, 0, now
            row.lease_until, row.updated_at, row.last_error = None, now, ""
            session.add(row)
            session.flush()
            return row
