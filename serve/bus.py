"""`RunNotices`: this API server's one subscription to the event bus's run notices, fanned out to the live
event streams (`serve.streams.follow_events`) and to listeners (the webhook worker's `wake`).

A stream registers a `NoticeWaiter` for its run and, instead of sleeping between store reads, waits for a
notice (or its safety poll); the events themselves are always read from the store by sequence number, so a
notice that is lost, late or repeated changes when the stream looks, never what it sends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.bus import EventBus, Message, Subscription, open_bus, shared_bus

if TYPE_CHECKING:
    from nodes.plugins.live import LivePlugins

__all__ = ["PLUGINS_TOPIC", "NoticeWaiter", "RunNotices", "follow_plugin_changes"]

_log = logging.getLogger("rayweave.bus")

#: The topic of "a replica installed or removed a plugin version" (its records are in the store).
PLUGINS_TOPIC = "plugins.changed"
#: How often a stream reads the store anyway while the bus is connected (a notice may be lost).
SAFETY_POLL_S = 1.0


class NoticeWaiter:
    """One stream's wait for the notices of one run; `close()` it when the stream ends."""

    def __init__(self, notices: RunNotices, run_id: str) -> None:
        self._notices = notices
        self.run_id = run_id
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def clear(self) -> None:
        """Forget notices so far (call right before reading the store)."""
        self._event.clear()

    def _notify(self) -> None:
        self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout_s: float) -> bool:
        """Wait for a notice of the run since the last `clear()`, at most `timeout_s`; whether one came."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop waiting for this run's notices."""
        self._notices._remove(self)


class RunNotices:
    """Subscribes to `runs.*` on `bus` and wakes the waiters of each notice's run and every listener.

    `live`: the bus crosses processes and is connected now, so notices can be relied on for latency and the
    streams poll the store only every `safety_poll_s`; otherwise they keep their quick poll as well.
    """

    def __init__(self, bus: EventBus, *, safety_poll_s: float = SAFETY_POLL_S, owns_bus: bool = True) -> None:
        self.bus = bus
        self._owns_bus = owns_bus
        self.safety_poll_s = safety_poll_s
        self._lock = threading.Lock()
        self._waiters: dict[str, set[NoticeWaiter]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._subscription = bus.subscribe("runs.*")
        self._thread = threading.Thread(target=self._dispatch, name="rayweave-bus-notices", daemon=True)
        self._thread.start()
        self._others: list[tuple[threading.Thread, Subscription]] = []

    @classmethod
    def open(cls, url: str) -> RunNotices:
        """The notices of the bus at `url` (`RAYWEAVE_EVENT_BUS`; a broker is connected in the background).
        Empty: this process's in-process bus, which runs executed in this process publish on."""
        if not url:
            return cls(shared_bus(url), owns_bus=False)
        return cls(open_bus(url))

    @property
    def live(self) -> bool:
        """Whether notices from other processes arrive right now (see the class docstring)."""
        return self.bus.remote and self.bus.connected

    def waiter(self, run_id: str) -> NoticeWaiter:
        """A waiter for `run_id`'s notices, registered now (call from the stream's event loop)."""
        waiter = NoticeWaiter(self, run_id)
        with self._lock:
            self._waiters.setdefault(run_id, set()).add(waiter)
        return waiter

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the dispatch thread; keep it quick) on every run notice."""
        with self._lock:
            self._listeners.append(callback)

    def follow(self, pattern: str, callback: Callable[[Message], None]) -> None:
        """Call `callback(message)` (from a thread of its own) for each message on the topics of `pattern`."""
        subscription = self.bus.subscribe(pattern)

        def run() -> None:
            for message in subscription:
                try:
                    callback(message)
                except Exception:
                    _log.exception("event bus: a handler of %s failed", pattern)

        thread = threading.Thread(target=run, name=f"rayweave-bus-{pattern}", daemon=True)
        thread.start()
        self._others.append((thread, subscription))

    def _remove(self, waiter: NoticeWaiter) -> None:
        with self._lock:
            waiters = self._waiters.get(waiter.run_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[waiter.run_id]

    def _dispatch(self) -> None:
        for message in self._subscription:
            try:
                self._deliver(message)
            except Exception:  # one odd message must not end the notices of the server
                _log.exception("event bus: could not dispatch a notice on %s", message.topic)

    def _deliver(self, message: Message) -> None:
        run_id = str(message.data.get("run_id", ""))
        with self._lock:
            waiters = list(self._waiters.get(run_id, ()))
            listeners = list(self._listeners)
        for waiter in waiters:
            waiter._notify()
        for listener in listeners:
            listener()

    def close(self) -> None:
        """Stop the subscription and close the bus (unless it is the process's shared one)."""
        self._subscription.close()
        for _thread, subscription in self._others:
            subscription.close()
        if self._owns_bus:
            self.bus.close()
        self._thread.join(5)
        for thread, _subscription in self._others:
            thread.join(5)


def follow_plugin_changes(notices: RunNotices, live: LivePlugins) -> None:
    """Announce `live`'s installs and removes on the bus, and make it look at the records at once when another
    replica announces one (its periodic look stays, for notices that are lost)."""
    live.on_change = lambda: notices.bus.publish(PLUGINS_TOPIC, {"type": "plugins.changed"})
    notices.follow(PLUGINS_TOPIC, lambda _message: live.changed_elsewhere())
