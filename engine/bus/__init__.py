"""The event bus between components (issue 19, docs/adr/022-event-bus.md): notices that something changed
(a run's new events, a plugin, a workflow, a model deployment), so subscribers stop polling the store; the store
stays the record.

`open_bus(url)` makes a bus from the `RAYWEAVE_EVENT_BUS` setting (empty: in-process; `nats://...`: NATS
JetStream); `shared_bus(url)` is the one bus of that URL in this process (the coordinator's sinks share it).
"""

from __future__ import annotations

import threading

from engine.bus.base import (
    EventBus,
    Message,
    Subscription,
    matches,
    model_notice,
    model_topic,
    run_notice,
    run_topic,
    workflow_notice,
    workflow_topic,
)
from engine.bus.memory import InProcessBus

__all__ = [
    "EventBus",
    "InProcessBus",
    "Message",
    "Subscription",
    "close_shared",
    "matches",
    "model_notice",
    "model_topic",
    "open_bus",
    "run_notice",
    "run_topic",
    "shared_bus",
    "workflow_notice",
    "workflow_topic",
]

_shared: dict[str, EventBus] = {}
_shared_lock = threading.Lock()


def open_bus(url: str) -> EventBus:
    """A new bus for `url`: empty for the in-process bus, `nats://HOST:PORT[?prefix=NAME]` for NATS JetStream
    (it connects in the background). ValueError naming the setting for any other URL."""
    if not url:
        return InProcessBus()
    from engine.bus.nats import NatsBus

    return NatsBus(url)


def shared_bus(url: str) -> EventBus:
    """This process's one bus for `url` (made on first use, kept for the process's life)."""
    with _shared_lock:
        bus = _shared.get(url)
        if bus is None:
            bus = _shared[url] = open_bus(url)
        return bus


def close_shared(url: str) -> None:
    """Close and forget this process's shared bus for `url`, if any (at shutdown, and in tests)."""
    with _shared_lock:
        bus = _shared.pop(url, None)
    if bus is not None:
        bus.close()
