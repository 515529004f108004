"""`NatsBus`: the event bus of a cluster, on NATS JetStream (`RAYWEAVE_EVENT_BUS=nats://host:4222`).

The client (`nats-py`) runs on an asyncio loop in a daemon thread of its own, so callers in any thread (the
coordinator's event sink, the API's threads) publish without waiting: `publish` hands the message to that loop
and returns. Messages go to the subjects `<prefix>.<topic>` of one JetStream stream (`<PREFIX>_BUS`, created when
missing, in memory, kept `max_age_s`), so a broker restart or a slow subscriber does not lose a burst; each
subscription is an ordered push consumer that starts with new messages.

A broker that is unreachable at start, or a connection that drops, is logged once (with what happens meanwhile:
live streams poll the store) and retried in the background; subscriptions are made again after a reconnect.
The URL may carry `?prefix=NAME` (subject prefix; default `rayweave`), so several installations, or tests, can
share one broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from engine.bus.base import Message, Subscription

__all__ = ["NatsBus", "parse_nats_url"]

_log = logging.getLogger("rayweave.bus")

_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Seconds between attempts to reach a broker that is down.
RETRY_S = 1.0
#: Notices kept while the first connection is being made, at most (later ones are dropped).
HELD = 10_000


def parse_nats_url(url: str) -> tuple[str, str]:
    """The server URL and the subject prefix of a bus URL `nats://host:port[?prefix=NAME]`; ValueError naming
    the problem for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(
            f"event bus URL {url!r} is not a NATS URL: use nats://HOST:PORT (e.g. nats://127.0.0.1:4222), "
            "or leave RAYWEAVE_EVENT_BUS empty for the in-process bus"
        )
    query = parse_qs(parts.query)
    prefix = (query.get("prefix") or ["rayweave"])[0]
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            f"event bus URL {url!r}: prefix {prefix!r} must be 1 to 64 letters, digits, '_' or '-'"
        )
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), prefix


class NatsBus:
    """An `EventBus` on NATS JetStream (see the module docstring). `connect_timeout_s` bounds each attempt to
    reach the broker; `max_age_s` is how long the stream keeps messages."""

    remote = True

    def __init__(self, url: str, *, connect_timeout_s: float = 2.0, max_age_s: float = 600.0) -> None:
        self.url = url
        self.server, self.prefix = parse_nats_url(url)
        self.stream = self.prefix.upper().replace("-", "_") + "_BUS"
        self.connect_timeout_s = connect_timeout_s
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._js: Any = None
        self._ready = threading.Event()
        self._closing = False
        self._down_logged = False
        self._publish_logged = False
        self._subscriptions: dict[Subscription, Any] = {}
        self._held: list[tuple[str, bytes]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- state --------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the broker and the stream exists."""
        return self._ready.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Start connecting if not yet, and wait up to `timeout_s` for it; whether the bus is connected."""
        self._start()
        return self._ready.wait(timeout_s)

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._run, name="rayweave-bus", daemon=True)
                self._thread.start()
                asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
            return self._loop

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        while not self._closing:
            try:
                nc = await nats.connect(
                    servers=[self.server],
                    connect_timeout=max(1, round(self.connect_timeout_s)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RETRY_S,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                )
                js = nc.jetstream()
                config = StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    storage=StorageType.MEMORY,
                    max_age=self.max_age_s,
                )
                try:
                    await js.add_stream(config)
                except Exception:  # it exists (perhaps with other limits): use it as it is
                    await js.stream_info(self.stream)
            except Exception as exc:
                if not self._down_logged:
                    self._down_logged = True
                    _log.warning(
                        "event bus %s unreachable (%s: %s); live event streams poll the store until it is "
                        "back (retrying every %.0f s)",
                        self.server,
                        type(exc).__name__,
                        exc,
                        RETRY_S,
                    )
                await asyncio.sleep(RETRY_S)
                continue
            self._nc, self._js = nc, js
            await self._subscribe_all()
            held, self._held = self._held, []
            for subject, data in held:  # before anything published from now on
                self._loop_task(self._publish(subject, data))
            self._ready.set()
            if self._down_logged:
                _log.warning("event bus %s reached again", self.server)
            self._down_logged = False
            return

    async def _on_error(self, exc: Exception) -> None:
        if not self._ready.is_set() and not self._down_logged and not self._closing:
            self._down_logged = True
            self._held.clear()
            _log.warning(
                "event bus %s unreachable (%s); live event streams poll the store until it is back "
                "(retrying every %.0f s)",
                self.server,
                exc,
                RETRY_S,
            )
        else:
            _log.debug("event bus %s: %s", self.server, exc)

    async def _on_disconnected(self) -> None:
        self._ready.clear()
        if not self._closing and not self._down_logged:
            self._down_logged = True
            _log.warning(
                "event bus %s: connection lost; live event streams poll the store until it is back",
                self.server,
            )

    async def _on_reconnected(self) -> None:
        await self._subscribe_all()
        self._ready.set()
        self._down_logged = False
        _log.warning("event bus %s: reconnected", self.server)

    async def _on_closed(self) -> None:
        self._ready.clear()
        if self._closing:
            return
        if not self._down_logged:
            self._down_logged = True
            _log.warning(
                "event bus %s: connection closed; live event streams poll the store until it is back",
                self.server,
            )
        await asyncio.sleep(RETRY_S)
        asyncio.get_running_loop().create_task(self._connect())

    def drop_connection(self) -> None:
        """Close the current connection as a network failure would (for tests and drills); the bus connects
        again in the background."""
        if self._loop is not None and self._nc is not None:
            self._ready.clear()
            asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(10)

    # -- publishing ---------------------------------------------------------------------------------

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        """Send `message` on `topic` in the background; while the first connection is being made it is kept and
        sent once connected (in order), and it is dropped (logged once) while the broker is down."""
        loop = self._start()
        if self._closing:
            return
        data = json.dumps(dict(message), separators=(",", ":")).encode()
        subject = f"{self.prefix}.{topic}"
        if self._ready.is_set():
            asyncio.run_coroutine_threadsafe(self._publish(subject, data), loop)
        elif not self._down_logged:  # still connecting for the first time: sent in order once connected
            loop.call_soon_threadsafe(self._hold, subject, data)
        elif not self._publish_logged:
            self._publish_logged = True
            _log.info("event bus %s not connected: notices are dropped until it is", self.server)

    def _hold(self, subject: str, data: bytes) -> None:
        """Keep a notice published during the first connection (on the loop; sent by `_connect`, in order)."""
        if self._ready.is_set():
            self._loop_task(self._publish(subject, data))
        elif not self._down_logged and len(self._held) < HELD:
            self._held.append((subject, data))

    def _loop_task(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, subject: str, data: bytes) -> None:
        try:
            await self._js.publish(subject, data, timeout=self.connect_timeout_s, stream=self.stream)
            self._publish_logged = False
        except Exception as exc:
            if not self._publish_logged:
                self._publish_logged = True
                _log.warning("event bus %s: a notice was not published (%s)", self.server, exc)

    # -- subscribing --------------------------------------------------------------------------------

    def subscribe(self, pattern: str) -> Subscription:
        """A subscription to `pattern`; waits up to `connect_timeout_s` for the broker to accept it when
        connected (else it is made once the bus connects)."""
        loop = self._start()
        subscription = Subscription(pattern, self._forget)
        with self._lock:
            self._subscriptions[subscription] = None
        if self._ready.is_set():
            future: Future[None] = asyncio.run_coroutine_threadsafe(self._subscribe(subscription), loop)
            try:
                future.result(self.connect_timeout_s)
            except Exception as exc:  # made again at the next (re)connect
                _log.warning("event bus %s: could not subscribe to %s yet (%s)", self.server, pattern, exc)
        return subscription

    async def _subscribe_all(self) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            try:
                await self._subscribe(subscription)
            except Exception as exc:
                _log.warning(
                    "event bus %s: could not subscribe to %s (%s)", self.server, subscription.pattern, exc
                )

    async def _subscribe(self, subscription: Subscription) -> None:
        from nats.js.api import DeliverPolicy

        old = self._subscriptions.get(subscription)
        if old is not None:
            with contextlib.suppress(Exception):  # the connection it belonged to is gone
                await old.unsubscribe()
        skip = len(self.prefix) + 1

        async def on_message(msg: Any) -> None:
            try:
                data = json.loads(msg.data)
            except ValueError:
                return
            subscription.deliver(Message(msg.subject[skip:], data))

        sub = await self._js.subscribe(
            f"{self.prefix}.{subscription.pattern}",
            cb=on_message,
            stream=self.stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions[subscription] = sub
                subscription.active.set()
                return
        await sub.unsubscribe()

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            sub = self._subscriptions.pop(subscription, None)
        if sub is not None and self._loop is not None and self._nc is not None and not self._nc.is_closed:
            asyncio.run_coroutine_threadsafe(sub.unsubscribe(), self._loop)

    # -- closing ------------------------------------------------------------------------------------

    def delete_stream(self) -> None:
        """Delete this bus's JetStream stream (tests and uninstall); the bus must be connected."""
        if self._loop is None or self._js is None:
            return
        asyncio.run_coroutine_threadsafe(self._js.delete_stream(self.stream), self._loop).result(10)

    def close(self) -> None:
        """End every subscription and close the connection (pending publishes are flushed first)."""
        self._closing = True
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        except Exception as exc:
            _log.debug("event bus %s: closing: %s", self.server, exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._ready.clear()

    async def _shutdown(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.drain(), 5)
            except Exception:
                await self._nc.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
