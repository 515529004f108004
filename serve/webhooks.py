"""The API server's outbound webhooks: the delivery worker started with the app (`serve.app`'s lifespan), with
the installation's settings, and the rule saying which runs a webhook's owner may see now (`serve.policy`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.store import Store
    from engine.store.shares import Audience
    from engine.webhooks.delivery import DeliveryPolicy
    from engine.webhooks.worker import WebhookWorker

#: Sending attempts at once per server.
CONCURRENCY = 4


def audience_lookup(store: Store) -> Callable[[str], Audience | None]:
    """`user_id -> Audience` as the store's run filters take it, from the user's current tenant and role; None
    for a user that is gone, disabled, or whose role may not read runs (its webhooks then wait)."""
    from engine.store import NotFoundError
    from engine.store.shares import Audience
    from serve.policy import role

    def audience_of(user_id: str) -> Audience | None:
        try:
            user = store.users.get(user_id)
        except NotFoundError:
            return None
        granted = role(user.role)
        if user.disabled or "runs:read" not in granted.permissions:
            return None
        return Audience(user.id, user.tenant_id, granted.sees_tenant)

    return audience_of


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How deliveries are attempted under `settings` (`RAYWEAVE_WEBHOOK_*`)."""
    from engine.webhooks.delivery import DeliveryPolicy

    return DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        backoff_max_s=settings.webhook_backoff_max_s,
        timeout_s=settings.webhook_timeout_s,
        allow=tuple(settings.webhook_allow),
    )


def start_worker(settings: Settings, store: Store) -> WebhookWorker:
    """Start the delivery worker of this server (stop it with `.stop()` when the server stops)."""
    from engine.secrets import key_provider
    from engine.webhooks.delivery import Deliverer
    from engine.webhooks.worker import WebhookWorker

    deliverer = Deliverer(store, lambda: key_provider(settings), delivery_policy(settings))
    worker = WebhookWorker(
        store, deliverer, audience_lookup(store), poll_s=settings.webhook_poll_s, concurrency=CONCURRENCY
    )
    worker.start()
    return worker
