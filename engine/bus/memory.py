"""`InProcessBus`: the event bus of one process (embedded mode: the API and the runs in one Python process)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from engine.bus.base import Message, Subscription, matches

__all__ = ["InProcessBus"]


class InProcessBus:
    """Delivers each published message to this process's matching subscriptions, synchronously and in order.

    It does not cross processes: a run executed by a Ray coordinator in another process publishes to that
    process's bus, which nobody hears; subscribers then rely on their store poll, as without a bus.
    """

    url = ""
    remote = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._closed = False

    @property
    def connected(self) -> bool:
        """True until the bus is closed."""
        return not self._closed

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        """Deliver `message` to every subscription whose pattern matches `topic`."""
        with self._lock:
            targets = [s for s in self._subscriptions if matches(s.pattern, topic)]
        delivered = Message(topic, dict(message))
        for subscription in targets:
            subscription.deliver(delivered)

    def subscribed(self, topic: str) -> bool:
        """Whether a subscription of this process would receive a message on `topic` now (a publisher can skip
        preparing what nobody would read)."""
        with self._lock:
            return any(matches(s.pattern, topic) for s in self._subscriptions)

    def subscribe(self, pattern: str) -> Subscription:
        """A subscription to the topics matching `pattern`, active at once."""
        subscription = Subscription(pattern, self._forget)
        subscription.active.set()
        with self._lock:
            if self._closed:
                subscription.close()
            else:
                self._subscriptions.append(subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def close(self) -> None:
        """End every subscription."""
        with self._lock:
            self._closed = True
            subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close()
