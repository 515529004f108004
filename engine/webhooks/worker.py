"""The delivery worker: a background thread of the API server that turns stored events into webhook deliveries
and sends them, so a slow or failing receiver never holds up or fails a run.

Each round (every `poll_s`, or at once after `wake()`):

1. **Scan.** For each enabled subscription, read from the store the events it wants that were created after its
   cursor minus `overlap_s` (never before the subscription itself), of the runs its owner may see now, that it
   has no delivery of yet; record them as deliveries and move the cursor. The store is the record: a restart
   reads from the stored cursor, the overlap takes in events committed late (a coordinator writes a batch a
   moment after the events happened), and the database's one-delivery-per-event constraint keeps two replicas
   (or a re-read) from recording an event twice. Delivery is at least once: a receiver drops duplicates by
   `webhook-id`.
2. **Send.** Lease the due deliveries (another replica's worker leaves leased ones alone) and attempt each in a
   small thread pool (`engine.webhooks.delivery.Deliverer`).

The event bus of issue 19 feeds the worker: the server's `serve.bus.RunNotices` calls `wake()` on each run
notice (notices that come during a round make one more round), and the poll every `poll_s` stays as the
catch-up path after a gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.webhooks import NewDelivery
from engine.webhooks.service import cloudevent_of

if TYPE_CHECKING:
    import httpx

    from engine.store.models import WebhookDelivery, WebhookSubscription
    from engine.store.protocol import Store
    from engine.store.shares import Audience
    from engine.webhooks.delivery import Deliverer

__all__ = ["OVERLAP_S", "WebhookWorker"]

_log = logging.getLogger("rayweave.webhooks")

#: How far back before its cursor each scan looks again (events committed late are still found).
OVERLAP_S = 300.0
#: Events recorded per subscription and round, and deliveries sent per round, at most.
BATCH = 200
#: The least time between the starts of two rounds: notices come at every stored batch of a run's events
#: (thousands a minute in a big run), and a round per notice would keep the worker reading the store beside it.
MIN_ROUND_S = 0.1


class WebhookWorker:
    """Scans `store` for events and sends deliveries with `deliverer`; `audience_of(user_id)` says which runs
    a subscription's owner may see now (None: none, e.g. a disabled user: its webhooks wait)."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        audience_of: Callable[[str], Audience | None],
        *,
        poll_s: float = 1.0,
        overlap_s: float = OVERLAP_S,
        concurrency: int = 4,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.audience_of = audience_of
        self.poll_s = poll_s
        self.overlap = timedelta(seconds=overlap_s)
        self.concurrency = concurrency
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        self._client = self.deliverer.client()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="rayweave-webhook-send")
        self._thread = threading.Thread(target=self._loop, name="rayweave-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Start the next round now (a redelivery, a test ping, a run notice of the event bus)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current round (attempts in flight end within their timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end deliveries for the server's life
                _log.exception("webhook delivery round failed; trying again in %s s", self.poll_s)
            self._wake.wait(self.poll_s)
            # Woken early: the notices until the next start join that round (at most one per MIN_ROUND_S).
            self._stop.wait(max(0.0, started + MIN_ROUND_S - time.monotonic()))
            self._wake.clear()

    def run_once(self) -> int:
        """One round: scan, then send what is due. Returns how many attempts were made."""
        subscriptions = self.store.webhooks.list(enabled_only=True)
        if not subscriptions:
            return 0  # only enabled webhooks' deliveries are sent (claim_due)
        for subscription in subscriptions:
            if self._stop.is_set():
                return 0
            self.scan(subscription)
        return self.send_due()

    def scan(self, subscription: WebhookSubscription) -> int:
        """Record the deliveries of the events `subscription` has not been given yet; returns how many."""
        audience = self.audience_of(subscription.owner)
        if audience is None:
            return 0
        started = utcnow()
        since = max(subscription.cursor_at - self.overlap, subscription.created_at)
        pending = self.store.webhooks.new_events(subscription, audience, since=since, limit=BATCH)
        deliveries = [
            NewDelivery(str(p.event.type), cloudevent_of(p), run_id=p.event.run_id, seq=p.event.seq)
            for p in pending
        ]
        # A full batch: continue after its last event; else everything up to the start of this scan was seen.
        cursor = pending[-1].created_at if len(pending) == BATCH else started
        if deliveries or cursor - subscription.cursor_at > self.overlap / 2:
            self.store.webhooks.enqueue(subscription.id, deliveries, cursor_at=cursor)
        return len(deliveries)

    def send_due(self) -> int:
        """Attempt every due delivery (leased first), in the thread pool; returns how many were attempted."""
        lease_s = 2 * self.deliverer.policy.timeout_s + 30
        due = self.store.webhooks.claim_due(limit=BATCH, lease_s=lease_s)
        if not due:
            return 0
        subscriptions: dict[str, WebhookSubscription] = {}
        for delivery in due:
            if delivery.subscription_id not in subscriptions:
                try:
                    subscriptions[delivery.subscription_id] = self.store.webhooks.get(
                        delivery.subscription_id
                    )
                except NotFoundError:  # deleted since the claim, with its deliveries
                    continue
        due = [d for d in due if d.subscription_id in subscriptions]
        client, pool = self._client, self._pool
        if client is None or pool is None:  # run_once without start(): attempt in this thread
            with self.deliverer.client() as own:
                for delivery in due:
                    self._attempt(own, delivery, subscriptions[delivery.subscription_id])
            return len(due)
        futures = [pool.submit(self._attempt, client, d, subscriptions[d.subscription_id]) for d in due]
        for future in futures:
            future.result()
        return len(due)

    def _attempt(
        self, client: httpx.Client, delivery: WebhookDelivery, subscription: WebhookSubscription
    ) -> None:
        try:
            self.deliverer.attempt(client, delivery, subscription)
        except Exception:  # e.g. the webhook was deleted meanwhile, or the master key is gone
            _log.exception("webhook %s: delivery %s could not be attempted", subscription.id, delivery.id)
