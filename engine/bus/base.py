"""The event bus contract: `EventBus` (publish, subscribe, close), its `Message` and `Subscription`, topic
patterns, and the run notice the durable layer publishes after it stores a run's events.

The bus carries notices, never the record: the database is the record. A subscriber learns from a notice that
something changed (run `r` has events up to `seq`) and reads what changed from the store, by sequence number,
so a lost or repeated notice costs a little latency and nothing else (docs/adr/022-event-bus.md).

Topics are dot-separated tokens (`runs.<run id>`); a pattern may use NATS wildcards: `*` matches one token,
`>` (last) one or more.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "EventBus",
    "Message",
    "Subscription",
    "matches",
    "model_notice",
    "model_topic",
    "run_notice",
    "run_topic",
    "topic_token",
    "workflow_notice",
    "workflow_topic",
]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Message:
    """One message received from the bus: its `topic` (without any prefix of the broker) and its JSON `data`."""

    topic: str
    data: Mapping[str, Any]


def matches(pattern: str, topic: str) -> bool:
    """Whether `topic` matches `pattern` (`*`: one token, `>` as the last token: one or more)."""
    want, have = pattern.split("."), topic.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)


def topic_token(value: str) -> str:
    """`value` as one topic token: itself when it is one (letters, digits, `_`, `-`), else `h` + its SHA-1."""
    return value if _TOKEN.fullmatch(value) else "h" + hashlib.sha1(value.encode()).hexdigest()


def run_topic(run_id: str) -> str:
    """The topic of a run's notices: `runs.<run id>` (an id that is not one topic token goes by its hash)."""
    return f"runs.{topic_token(run_id)}"


def workflow_topic(workflow_id: str) -> str:
    """The topic of a workflow's notices (`workflow.saved`, `workflow.deleted`): `workflows.<id>`."""
    return f"workflows.{topic_token(workflow_id)}"


def workflow_notice(workflow_id: str, event_type: str, version: int | None = None) -> dict[str, Any]:
    """The notice published after a workflow's change is stored: `workflow.saved` with its new latest
    `version`, or `workflow.deleted`. Subscribers read the workflow from the store, not from the notice."""
    return {"workflow_id": workflow_id, "type": event_type, "version": version}


def model_topic(name: str) -> str:
    """The topic of a served model's notices (`model.deployed`, `model.deleted`, `model.scaled`): `models.<name>`
    (a name with a `.` goes by its hash)."""
    return f"models.{topic_token(name)}"


def model_notice(name: str, event_type: str, **details: Any) -> dict[str, Any]:
    """The notice published after a model deployment changed: `model.deployed` (`version`), `model.deleted`, or
    `model.scaled` (a replica came up or went: `replica`, `change` "up"/"down"). Serve's own record of the
    deployment is the truth; subscribers read it there."""
    return {"name": name, "type": event_type, **details}


def run_notice(run_id: str, seq: int, event_type: str) -> dict[str, Any]:
    """The notice published after a run's events up to `seq` (the last one of type `event_type`) are stored."""
    return {"run_id": run_id, "seq": seq, "type": event_type}


class Subscription:
    """The messages of one subscription, in the order the bus delivered them: a thread-safe blocking iterator
    (`for message in subscription`, or `get(timeout)`), ended by `close()` (or by closing the bus)."""

    _END = object()

    def __init__(self, pattern: str, on_close: Callable[[Subscription], None] | None = None) -> None:
        self.pattern = pattern
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._on_close = on_close
        #: Set once the broker delivers to this subscription (at once for the in-process bus).
        self.active = threading.Event()

    @property
    def closed(self) -> bool:
        """Whether the subscription was closed (no more messages will come)."""
        return self._closed.is_set()

    def deliver(self, message: Message) -> None:
        """Hand `message` to the subscriber (called by the bus, from any thread)."""
        if not self._closed.is_set():
            self._queue.put(message)

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to `timeout` seconds (None: until one comes); None on timeout or close."""
        if self._closed.is_set() and self._queue.empty():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._END:
            self._queue.put(item)  # other readers end too
            return None
        assert isinstance(item, Message)
        return item

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.get()
            if message is None:
                return
            yield message

    def close(self) -> None:
        """Stop receiving; a reader waiting in `get` or a `for` loop returns."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(self._END)
        if self._on_close is not None:
            self._on_close(self)


@runtime_checkable
class EventBus(Protocol):
    """Notices between components (`engine.bus.memory.InProcessBus`, `engine.bus.nats.NatsBus`).

    `publish` never blocks on the network and never raises for a broker that is down (the notice is dropped
    and logged once; subscribers catch up from the store). Delivery is at least once while connected and may
    repeat or miss a message across a connection loss. `connected` says whether messages flow right now.
    """

    url: str

    @property
    def connected(self) -> bool:
        """Whether published messages reach subscribers right now."""
        ...

    @property
    def remote(self) -> bool:
        """Whether the bus crosses processes (a broker), so a subscriber hears publishers of other processes."""
        ...

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        """Send `message` (JSON-able) on `topic`; returns at once."""
        ...

    def subscribe(self, pattern: str) -> Subscription:
        """Receive the messages of the topics matching `pattern` from now on."""
        ...

    def close(self) -> None:
        """Close the bus and every subscription of it."""
        ...
