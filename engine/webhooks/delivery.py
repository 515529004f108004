"""One delivery attempt: POST the CloudEvent signed, judge the answer, record it and audit it.

An answer is judged (`judge`) as

- delivered: any 2xx;
- worth retrying: 429 and 5xx answers, timeouts and connection errors; the next attempt comes after an
  exponential backoff with jitter (`backoff_s`), or after the receiver's `Retry-After` when it sends one
  (never sooner than the backoff, never later than `backoff_max_s`);
- not worth retrying: any other answer (3xx: redirects are not followed; 4xx: the receiver refused this
  event, sending it again will not help) and an address the guard refuses.

A delivery that is not worth retrying, or has had `max_attempts` attempts, becomes a dead letter
(`DeliveryStatus.DEAD`), kept, listed and re-deliverable (`POST .../redeliver`). Every attempt is written to the
audit log (`webhook.delivery`), and so is every dead letter (`webhook.dead_letter`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.store.columns import utcnow
from engine.store.models import DeliveryStatus
from engine.webhooks.signing import signature_headers

if TYPE_CHECKING:
    import httpx

    from engine.secrets import KeyProvider
    from engine.store.models import WebhookDelivery, WebhookSubscription
    from engine.store.protocol import Store

__all__ = ["AUDIT_ACTOR", "Deliverer", "DeliveryPolicy", "Outcome", "backoff_s", "body_bytes", "judge"]

#: How the audit log names the delivery worker.
AUDIT_ACTOR = "rayweave (webhooks)"
MEDIA_TYPE = "application/cloudevents+json"
USER_AGENT = "rayweave-webhooks/1"
#: Longest error text kept per attempt.
MAX_ERROR = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are attempted: `max_attempts` per delivery, the first retry after about `backoff_s`
    (doubling each time, at most `backoff_max_s`), `timeout_s` per attempt, internal addresses in `allow`."""

    max_attempts: int = 8
    backoff_s: float = 10.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: `delivered`, else whether to `retry`; the status code (None without an
    answer), an error text, and the receiver's `Retry-After` in seconds when it sent one."""

    delivered: bool
    retry: bool
    status_code: int | None = None
    error: str = ""
    retry_after_s: float | None = None


def judge(status_code: int, headers: Mapping[str, str] | None = None) -> Outcome:
    """The outcome of an HTTP answer (see the module docstring)."""
    if 200 <= status_code < 300:
        return Outcome(True, False, status_code)
    retry = status_code == 429 or status_code >= 500
    if retry:
        error = f"the receiver answered {status_code}; trying again later"
    elif 300 <= status_code < 400:
        error = f"the receiver answered {status_code} (a redirect); webhooks do not follow redirects: set the final URL"
    else:
        error = f"the receiver answered {status_code}; it refused the event, so it is not sent again"
    return Outcome(False, retry, status_code, error, _retry_after(headers or {}))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def backoff_s(
    attempt: int, base_s: float, max_s: float, *, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before the attempt after `attempt` (1 = after the first): `base_s * 2**(attempt-1)` capped
    at `max_s`, then jittered to between half and all of it, so receivers that were down are not hit in lockstep."""
    ceiling = min(max_s, base_s * float(2 ** max(0, attempt - 1)))
    return ceiling * (0.5 + 0.5 * rng())


def body_bytes(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for a CloudEvent."""
    return json.dumps(dict(body), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def send(client: httpx.Client, url: str, secret: str, delivery_id: str, body: bytes) -> Outcome:
    """POST one signed delivery and judge the answer; never raises for a network failure."""
    import httpx

    from nodes.builtin.errors import AccessDeniedError

    headers = {"content-type": MEDIA_TYPE, "user-agent": USER_AGENT}
    headers.update(signature_headers(secret, delivery_id, body))
    try:
        response = client.post(url, content=body, headers=headers)
    except AccessDeniedError as exc:
        message = str(exc).replace("nodes may not reach", "webhooks may not reach")
        return Outcome(False, False, None, message.replace("RAYWEAVE_HTTP_ALLOW", "RAYWEAVE_WEBHOOK_ALLOW"))
    except httpx.TimeoutException as exc:
        return Outcome(False, True, None, f"timed out ({type(exc).__name__}); trying again later")
    except httpx.HTTPError as exc:
        return Outcome(False, True, None, f"could not connect: {exc}; trying again later"[:MAX_ERROR])
    return judge(response.status_code, response.headers)


@dataclass
class Deliverer:
    """Attempts deliveries of `store` with `policy`, opening signing secrets with the key provider `keys()`
    returns (asked at each attempt: the master key may appear, or rotate, while the server runs)."""

    store: Store
    keys: Callable[[], KeyProvider]
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    rng: Callable[[], float] = random.random

    def client(self) -> httpx.Client:
        """An HTTP client for a batch of attempts (guarded, no redirects)."""
        from engine.webhooks.targets import guarded_client

        return guarded_client(self.policy.allow, timeout_s=self.policy.timeout_s)

    def attempt(
        self, client: httpx.Client, delivery: WebhookDelivery, subscription: WebhookSubscription
    ) -> WebhookDelivery:
        """Send `delivery` once, record the attempt (delivered, scheduled again, or dead) and audit it."""
        from engine.webhooks.service import open_secret

        secret = open_secret(subscription, self.keys())
        outcome = send(client, subscription.url, secret, delivery.id, body_bytes(delivery.body))
        number = delivery.attempts + 1
        if outcome.delivered:
            status, next_at = DeliveryStatus.DELIVERED, None
        elif outcome.retry and number < self.policy.max_attempts:
            delay = backoff_s(number, self.policy.backoff_s, self.policy.backoff_max_s, rng=self.rng)
            if outcome.retry_after_s is not None:
                delay = min(max(delay, outcome.retry_after_s), self.policy.backoff_max_s)
            status, next_at = DeliveryStatus.SCHEDULED, utcnow() + timedelta(seconds=delay)
        else:
            status, next_at = DeliveryStatus.DEAD, None
        error = outcome.error[:MAX_ERROR]
        if status is DeliveryStatus.DEAD and outcome.retry:
            error = f"{error}; gave up after {number} attempts"[:MAX_ERROR]
        row = self.store.webhooks.record_attempt(
            delivery.id, status=status, status_code=outcome.status_code, error=error, next_attempt_at=next_at
        )
        details = {
            "delivery": delivery.id,
            "event_type": delivery.event_type,
            "attempt": number,
            "status_code": outcome.status_code,
            "result": status.value,
            "error": error,
        }
        self.store.audit.append(
            AUDIT_ACTOR,
            "webhook.delivery",
            resource_type="webhook",
            resource_id=subscription.id,
            outcome="ok" if outcome.delivered else "error",
            details=details,
        )
        if status is DeliveryStatus.DEAD:
            self.store.audit.append(
                AUDIT_ACTOR,
                "webhook.dead_letter",
                resource_type="webhook",
                resource_id=subscription.id,
                outcome="error",
                details={"delivery": delivery.id, "event_type": delivery.event_type, "attempts": number},
            )
        return row
