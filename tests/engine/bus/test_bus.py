"""The event bus on both implementations: messages round-trip in order to the matching subscriptions, a
closed subscription ends its reader, and a NATS broker that cannot be reached is logged once while `publish`
neither blocks nor raises (real NATS JetStream on 127.0.0.1:4222; each test has its own subjects and stream)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from cluster.settings import Settings
from engine.bus import InProcessBus, matches, open_bus, run_topic
from engine.bus.nats import NatsBus
from tests.serve.api.server import free_port

NATS = "nats://127.0.0.1:4222"


@pytest.fixture
def nats_url() -> Iterator[str]:
    """A bus URL with a prefix (subjects and stream) of this test only; the stream is deleted afterwards."""
    url = f"{NATS}?prefix=rwtest_{uuid.uuid4().hex[:12]}"
    yield url
    cleaner = NatsBus(url)
    if cleaner.wait_connected(5):
        cleaner.delete_stream()
    cleaner.close()


def test_topic_patterns() -> None:
    assert matches("runs.*", "runs.abc") and not matches("runs.*", "runs.abc.x")
    assert matches("runs.>", "runs.abc.x") and not matches("runs.>", "runs")
    assert not matches("runs.*", "plugins.abc")
    assert run_topic("0123abcd") == "runs.0123abcd"
    assert run_topic("a.b c").startswith("runs.h") and "." not in run_topic("a.b c")[5:]


def test_in_process_round_trip() -> None:
    bus = InProcessBus()
    runs, everything = bus.subscribe("runs.*"), bus.subscribe(">")
    for seq in range(1, 4):
        bus.publish("runs.r1", {"run_id": "r1", "seq": seq})
    bus.publish("plugins.p", {"name": "p"})
    assert [runs.get(1).data["seq"] for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
    assert runs.get(0.01) is None  # the plugin message is not a run's
    assert [m.topic for m in (everything.get(1) for _ in range(4)) if m] == ["runs.r1"] * 3 + ["plugins.p"]
    bus.close()
    assert list(runs) == [] and runs.closed


def test_the_in_process_bus_says_whether_a_topic_has_a_subscriber() -> None:
    bus = InProcessBus()
    assert not bus.subscribed("runs.r1")
    runs = bus.subscribe("runs.*")
    assert bus.subscribed("runs.r1") and not bus.subscribed("plugins.p")
    runs.close()
    assert not bus.subscribed("runs.r1")
    bus.close()


def test_nats_round_trip_in_order_across_connections(nats_url: str) -> None:
    publisher, subscriber = open_bus(nats_url), open_bus(nats_url)
    try:
        assert isinstance(subscriber, NatsBus) and subscriber.wait_connected(5)
        assert isinstance(publisher, NatsBus) and publisher.wait_connected(5)
        runs = subscriber.subscribe("runs.*")
        assert runs.active.wait(5)
        for seq in range(1, 21):
            publisher.publish("runs.r1", {"run_id": "r1", "seq": seq})
        publisher.publish("plugins.p", {"name": "p"})
        received = [runs.get(5) for _ in range(20)]
        assert [m.data["seq"] for m in received if m] == list(range(1, 21))
        assert {m.topic for m in received if m} == {"runs.r1"}
        assert runs.get(0.2) is None  # not the plugin message
        runs.close()
        assert runs.get(0.01) is None
    finally:
        publisher.close()
        subscriber.close()


def test_nats_unreachable_is_logged_once_and_publish_does_not_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rayweave.bus")
    url = f"nats://127.0.0.1:{free_port()}"
    bus = open_bus(url)
    try:
        started = time.perf_counter()
        for seq in range(100):
            bus.publish("runs.r1", {"run_id": "r1", "seq": seq})
        assert time.perf_counter() - started < 0.5
        assert not bus.connected
        deadline = time.monotonic() + 5
        while "unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1, caplog.text
        assert url in unreachable[0].getMessage() and "poll the store" in unreachable[0].getMessage()
    finally:
        bus.close()


def test_a_bus_url_that_is_not_nats_is_refused_with_what_to_use() -> None:
    with pytest.raises(ValueError, match=r"not a NATS URL: use nats://HOST:PORT"):
        open_bus("redis://127.0.0.1:6379")
    with pytest.raises(ValueError, match="prefix"):
        open_bus(f"{NATS}?prefix=a.b")
    # The setting says the same when the server starts (RAYWEAVE_EVENT_BUS).
    with pytest.raises(ValidationError, match=r"RAYWEAVE_EVENT_BUS empty for the in-process bus"):
        Settings(event_bus="redis://127.0.0.1:6379")
