"""Workflow edits and model deployments over the event bus (issue 19): the API announces a saved version, a
deleted workflow, a deployed or deleted model; another server's `WorkflowWatch` reads the store on the notice
(and catches up by its poll when a notice is lost), and its cached model handles are dropped. On the in-process
bus and on real NATS JetStream (127.0.0.1:4222, a subject prefix and stream of the test, deleted afterwards).
The served API's own announcements are tested on NATS in `test_event_bus.py`."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from cluster.settings import Settings
from engine.bus import InProcessBus, model_notice, model_topic
from engine.bus.nats import NatsBus
from engine.store import Store, open_store
from serve.bus import RunNotices, WorkflowWatch, announce, follow_model_changes
from tests.serve.api.conftest import add_doc

NATS = "nats://127.0.0.1:4222"


@pytest.fixture(params=["in-process", "nats"])
def two_servers(request: pytest.FixtureRequest) -> Iterator[tuple[RunNotices, RunNotices]]:
    """The bus notices of two API servers: one in-process bus they share, or two connections to NATS."""
    if request.param == "in-process":
        bus = InProcessBus()
        pair = (RunNotices(bus, owns_bus=False), RunNotices(bus, owns_bus=False))
        yield pair
        for notices in pair:
            notices.close()
        bus.close()
        return
    url = f"{NATS}?prefix=rwtest_{uuid.uuid4().hex[:12]}"
    pair = (RunNotices.open(url), RunNotices.open(url))
    try:
        for notices in pair:
            assert isinstance(notices.bus, NatsBus) and notices.bus.wait_connected(5)
        yield pair
    finally:
        for notices in pair:
            notices.close()
        cleaner = NatsBus(url)
        if cleaner.wait_connected(5):
            cleaner.delete_stream()
        cleaner.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = open_store(Settings(home=tmp_path).resolved_database_url)
    yield the_store
    the_store.close()


def _next(changes: queue.SimpleQueue[tuple[str, int | None]], timeout_s: float = 5) -> tuple[str, int | None]:
    try:
        return changes.get(timeout=timeout_s)
    except queue.Empty:
        raise AssertionError(f"no workflow change reported within {timeout_s} s") from None


def test_a_saved_version_and_a_delete_reach_the_other_server_once(
    two_servers: tuple[RunNotices, RunNotices], store: Store
) -> None:
    first, second = two_servers
    created = store.workflows.create(add_doc())
    wid = str(created.workflow_id)
    # A watch that would read the store only once an hour by itself: what it reports came from the notices.
    watch = WorkflowWatch(second, store, poll_s=3600)
    changes: queue.SimpleQueue[tuple[str, int | None]] = queue.SimpleQueue()
    watch.watch(wid, lambda workflow_id, version: changes.put((workflow_id, version)))
    sender = SimpleNamespace(run_notices=first)
    try:
        from engine.bus import workflow_notice, workflow_topic

        store.workflows.save(created.workflow_id, add_doc("add-three"), expected_version=1)
        started = time.monotonic()
        announce(sender, workflow_topic(wid), workflow_notice(wid, "workflow.saved", 2))
        assert _next(changes) == (wid, 2)
        took = time.monotonic() - started
        # A repeated or stale notice reads the store again and reports nothing new.
        announce(sender, workflow_topic(wid), workflow_notice(wid, "workflow.saved", 2))
        announce(sender, workflow_topic(wid), workflow_notice(wid, "workflow.saved", 1))
        store.workflows.delete(created.workflow_id)
        announce(sender, workflow_topic(wid), workflow_notice(wid, "workflow.deleted"))
        assert _next(changes) == (wid, None)
        time.sleep(0.2)
        assert changes.empty(), "a change was reported twice"
        assert took < 2, f"the notice took {took:.2f} s"
    finally:
        watch.close()


def test_a_lost_notice_is_caught_up_from_the_store(
    two_servers: tuple[RunNotices, RunNotices], store: Store
) -> None:
    _first, second = two_servers
    created = store.workflows.create(add_doc())
    wid = str(created.workflow_id)
    watch = WorkflowWatch(second, store, poll_s=0.2)
    changes: queue.SimpleQueue[tuple[str, int | None]] = queue.SimpleQueue()
    watch.watch(wid, lambda workflow_id, version: changes.put((workflow_id, version)))
    try:
        # Saved by a server whose notice never arrived: the watch's poll finds versions 2 and 3 as the latest, 3.
        store.workflows.save(created.workflow_id, add_doc("add-three"), expected_version=1)
        store.workflows.save(created.workflow_id, add_doc("add-four"), expected_version=2)
        assert _next(changes) == (wid, 3)
        time.sleep(0.5)
        assert changes.empty()
    finally:
        watch.close()


def test_model_notices_drop_the_other_servers_cached_handles(
    two_servers: tuple[RunNotices, RunNotices],
) -> None:
    first, second = two_servers
    forgotten: queue.SimpleQueue[str] = queue.SimpleQueue()
    follow_model_changes(second, forgotten.put)
    sender = SimpleNamespace(run_notices=first)
    announce(sender, model_topic("iris"), model_notice("iris", "model.deployed", version="3"))
    announce(
        sender, model_topic("iris.v2"), model_notice("iris.v2", "model.scaled", replica="r1", change="up")
    )
    announce(sender, model_topic("iris"), model_notice("iris", "model.deleted"))
    # A scale change keeps the handle: it routes to the replicas there are.
    assert [forgotten.get(timeout=5) for _ in range(2)] == ["iris", "iris"]
    time.sleep(0.3)
    assert forgotten.empty()
