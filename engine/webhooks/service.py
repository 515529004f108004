"""Webhook subscriptions: checked input, a generated signing secret sealed at rest, and the events they carry.

The signing secret is made here (`signing.new_secret`), returned once by `create`, and stored sealed with the
secrets machinery (`engine.secrets.envelope`: a data key of its own, wrapped by the installation's master key;
associated data: the owner and `webhook:{id}`), so a database dump does not reveal it and a sealed secret copied
to another subscription does not open. Only the delivery worker opens it (`open_secret`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from engine.secrets.envelope import Sealed, context_of, open_sealed, seal
from engine.store.columns import new_id, utcnow
from engine.store.models import NOTIFIED_EVENT_TYPES
from engine.store.webhooks import NewDelivery, PendingEvent
from engine.webhooks.errors import WebhookInputError
from engine.webhooks.signing import new_secret
from engine.webhooks.targets import check_url

if TYPE_CHECKING:
    from engine.secrets import KeyProvider
    from engine.store.models import WebhookDelivery, WebhookSubscription
    from engine.store.protocol import Store

__all__ = [
    "EVENT_TYPES",
    "PING_TYPE",
    "WebhookService",
    "check_event_types",
    "cloudevent_of",
    "delivery_json",
    "open_secret",
    "ping_delivery",
    "subscription_json",
]

#: The event types a webhook may subscribe to (the run events that matter outside; see ADR 021).
EVENT_TYPES: tuple[str, ...] = tuple(str(t) for t in NOTIFIED_EVENT_TYPES)
#: The CloudEvent type of a test delivery (`POST /v1/webhooks/{id}/test`).
PING_TYPE = "io.rayweave.webhook.ping"
MAX_DESCRIPTION = 1000


def check_event_types(event_types: Sequence[str]) -> list[str]:
    """The distinct subscribed types in the order given; `WebhookInputError` on `event_types` naming an
    unknown one and listing the known ones."""
    if not event_types:
        raise WebhookInputError("event_types", f"name at least one event type of {', '.join(EVENT_TYPES)}")
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise WebhookInputError(
            "event_types",
            f"{', '.join(repr(t[:60]) for t in unknown[:5])} is not an event type webhooks carry; choose from "
            f"{', '.join(EVENT_TYPES)} (a finished run is run.succeeded, run.failed or run.cancelled)",
        )
    return list(dict.fromkeys(event_types))


def _context(owner: str, subscription_id: str) -> bytes:
    return context_of(owner, f"webhook:{subscription_id}")


def open_secret(subscription: WebhookSubscription, keys: KeyProvider) -> str:
    """The signing secret of a subscription (for the delivery worker only)."""
    sealed = Sealed(
        subscription.secret_ciphertext, subscription.secret_wrapped_key, subscription.secret_key_id
    )
    return open_sealed(sealed, keys, _context(subscription.owner, subscription.id))


def cloudevent_of(pending: PendingEvent) -> dict[str, Any]:
    """The CloudEvent a webhook receives for a run event (`engine.formats.cloudevents`), with the run's
    workflow in the `rayweaveworkflow` extension attribute when the run has one."""
    from engine.formats.cloudevents import to_cloudevent

    cloud = to_cloudevent(pending.event)
    if pending.workflow_id is not None:
        cloud["rayweaveworkflow"] = pending.workflow_id
    return cloud


def ping_delivery(subscription: WebhookSubscription) -> NewDelivery:
    """A test delivery: a CloudEvent of type `PING_TYPE` that says which webhook it comes from."""
    from engine.formats.cloudevents import rfc3339

    delivery_id = new_id()
    body = {
        "specversion": "1.0",
        "id": delivery_id,
        "source": f"/rayweave/webhooks/{subscription.id}",
        "type": PING_TYPE,
        "time": rfc3339(utcnow().timestamp()),
        "datacontenttype": "application/json",
        "data": {"webhook": subscription.id, "message": "a test delivery from rayweave"},
    }
    return NewDelivery(event_type=PING_TYPE, body=body, id=delivery_id)


def subscription_json(row: WebhookSubscription) -> dict[str, Any]:
    """What may be shown of a subscription (never its secret)."""
    return {
        "id": row.id,
        "owner": row.owner,
        "tenant_id": row.tenant_id,
        "url": row.url,
        "event_types": list(row.event_types),
        "workflow_id": row.workflow_id,
        "description": row.description,
        "enabled": row.enabled,
        "created_at": row.created_at.astimezone(UTC).isoformat(),
        "updated_at": row.updated_at.astimezone(UTC).isoformat(),
        "created_by": row.created_by,
    }


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    """A delivery as the API and the CLI show it."""

    def when(value: Any) -> str | None:
        return value.astimezone(UTC).isoformat() if value is not None else None

    return {
        "id": row.id,
        "webhook_id": row.subscription_id,
        "event_type": row.event_type,
        "event_id": str(row.body.get("id", "")),
        "run_id": row.run_id,
        "seq": row.seq,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": when(row.next_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": when(row.created_at),
        "delivered_at": when(row.delivered_at),
    }


@dataclass(frozen=True)
class Created:
    """A new subscription and its signing secret (shown this once, never again)."""

    subscription: WebhookSubscription
    secret: str


class WebhookService:
    """Subscriptions of `store`, their secrets sealed with `keys`, their URLs checked against `allow`."""

    def __init__(self, store: Store, keys: KeyProvider, *, allow: Sequence[str] = ()) -> None:
        self.store = store
        self.keys = keys
        self.allow = tuple(allow)

    def create(
        self,
        *,
        owner: str,
        tenant_id: str,
        url: str,
        event_types: Sequence[str],
        workflow_id: str | None = None,
        description: str = "",
        enabled: bool = True,
        actor: str = "",
    ) -> Created:
        """Check the input (`WebhookInputError` naming the field), generate and seal a signing secret, store
        the subscription; its events start now."""
        check_url(url, self.allow)
        types = check_event_types(event_types)
        _check_description(description)
        subscription_id = new_id()
        secret = new_secret()
        sealed = seal(secret, self.keys, _context(owner, subscription_id))
        row = self.store.webhooks.create(
            subscription_id=subscription_id,
            owner=owner,
            tenant_id=tenant_id,
            url=url,
            event_types=types,
            workflow_id=workflow_id,
            description=description,
            enabled=enabled,
            secret_ciphertext=sealed.ciphertext,
            secret_wrapped_key=sealed.wrapped_key,
            secret_key_id=sealed.key_id,
            actor=actor,
        )
        return Created(row, secret)

    def update(self, subscription_id: str, changes: dict[str, Any]) -> WebhookSubscription:
        """Change a subscription (the same checks as `create` for what changes)."""
        if "url" in changes:
            check_url(str(changes["url"]), self.allow)
        if "event_types" in changes:
            changes = {**changes, "event_types": check_event_types(changes["event_types"])}
        if "description" in changes:
            _check_description(str(changes["description"]))
        return self.store.webhooks.update(subscription_id, changes)


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise WebhookInputError(
            "description", f"has {len(description)} characters; at most {MAX_DESCRIPTION}"
        )
