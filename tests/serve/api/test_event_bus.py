"""A server configured with the NATS event bus (`RAYWEAVE_EVENT_BUS`): its live event streams get a run's
events in order with no gap and no duplicate, wake on the bus's notices, catch up from the store when the bus
connection drops mid-run, its webhook worker wakes on the notices, and a bus that cannot be reached at start is
logged while streams still work by polling. Real NATS JetStream on 127.0.0.1:4222, a subject prefix and stream per module (deleted afterwards)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.client as ws_client
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosedOK

from cluster.settings import Settings
from engine.bus import close_shared, shared_bus
from engine.bus.nats import NatsBus
from engine.store import open_store
from serve.app import create_app
from serve.bus import RunNotices
from serve.config import ServeOptions
from tests.serve.api.conftest import Api
from tests.serve.api.server import free_port, serving
from tests.serve.api.test_events import STEPS, _check_complete, _sse_read, _start, _ws_read, _ws_url
from tests.serve.api.test_webhooks_api import Receiver, receiver, wait_until  # noqa: F401 (a fixture)

OPTIONS = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)


@dataclass
class BusApi:
    """A served app on a bus: the `Api`, the app (its `run_notices`) and the bus URL."""

    api: Api
    app: FastAPI
    url: str

    @property
    def notices(self) -> RunNotices:
        """The server's subscription to run notices."""
        notices = self.app.state.run_notices
        assert isinstance(notices, RunNotices)
        return notices


def _serve(home: Path, bus_url: str) -> Generator[BusApi, None, None]:
    # The webhook worker would look for events once an hour by itself: only the bus's notices wake it sooner.
    settings = Settings(home=home, event_bus=bus_url, webhook_allow=["127.0.0.1"], webhook_poll_s=3600)
    store = open_store(settings.resolved_database_url)
    app = create_app(settings, store=store, options=OPTIONS)
    try:
        with serving(app) as url:
            yield BusApi(Api(url, home, store, (home / "admin.key").read_text().strip()), app, bus_url)
    finally:
        close_shared(bus_url)  # the runs' sinks in this process published through it
        store.close()


@pytest.fixture(scope="module")
def on_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BusApi]:
    """A server on NATS with a prefix of this module; its stream is deleted afterwards."""
    url = f"nats://127.0.0.1:4222?prefix=rwtest_{uuid.uuid4().hex[:12]}"
    yield from _serve(tmp_path_factory.mktemp("bus-home"), url)
    cleaner = NatsBus(url)
    if cleaner.wait_connected(5):
        cleaner.delete_stream()
    cleaner.close()


def test_streams_on_the_bus_get_every_event_once_in_order_and_the_notices_name_the_run(
    on_nats: BusApi,
) -> None:
    bus = on_nats.notices.bus
    assert isinstance(bus, NatsBus) and bus.wait_connected(5) and on_nats.notices.live
    watcher = NatsBus(on_nats.url)
    try:
        assert watcher.wait_connected(5)
        notices = watcher.subscribe("runs.*")
        assert notices.active.wait(5)
        run_id = _start(on_nats.api, 11)
        live = _ws_read(on_nats.api, run_id, 0)
        _check_complete(live, run_id)
        assert _sse_read(on_nats.api, run_id, None) == live
        seen: list[dict[str, Any]] = []
        while (message := notices.get(2)) is not None:
            seen.append(dict(message.data))
            if message.data["seq"] == live[-1]["seq"]:
                break
        # One notice per stored batch, after the commit, in order, ending with the run's final event.
        assert {n["run_id"] for n in seen} == {run_id}
        assert [n["seq"] for n in seen] == sorted({n["seq"] for n in seen})
        assert seen[-1] == {"run_id": run_id, "seq": live[-1]["seq"], "type": "run.succeeded"}
    finally:
        watcher.close()


def test_the_webhook_worker_wakes_on_the_notices(on_nats: BusApi, receiver: Receiver) -> None:  # noqa: F811
    bus = on_nats.notices.bus
    assert isinstance(bus, NatsBus) and bus.wait_connected(5)
    with on_nats.api.client() as c:
        made = c.post("/v1/webhooks", json={"url": f"{receiver.url}/bus", "event_types": ["run.succeeded"]})
        assert made.status_code == 201, made.text
    run_id = _start(on_nats.api, 15)
    # Long before the worker's hourly poll: the run's final notice started a delivery round.
    got = wait_until(lambda: [r for r in receiver.at("/bus") if run_id in r.body.decode()], 10)
    assert got[0].event["type"].endswith("run.succeeded")


def test_a_bus_connection_dropped_mid_run_is_caught_up_from_the_store(on_nats: BusApi) -> None:
    server_bus, sink_bus = on_nats.notices.bus, shared_bus(on_nats.url)
    assert isinstance(server_bus, NatsBus) and isinstance(sink_bus, NatsBus)
    assert server_bus.wait_connected(5) and sink_bus.wait_connected(5)
    run_id = _start(on_nats.api, 12)
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {on_nats.api.admin_key}"}
    with ws_client.connect(_ws_url(on_nats.api, run_id), additional_headers=headers) as ws:
        try:
            while True:
                events.append(json.loads(ws.recv(timeout=20)))
                if len(events) == 3:
                    # Both ends lose their connection while the run goes on: the server's subscription and the
                    # connection the run's sink publishes on.
                    sink_bus.drop_connection()
                    server_bus.drop_connection()
                    assert not on_nats.notices.live  # back after about a second, when the run is over
        except ConnectionClosedOK:
            pass
    _check_complete(events, run_id)
    assert events[2]["type"] != "run.succeeded"  # the drop happened mid-run
    # The bus comes back by itself, and a later run streams over it again.
    assert server_bus.wait_connected(5) and sink_bus.wait_connected(5)
    again = _start(on_nats.api, 13)
    _check_complete(_ws_read(on_nats.api, again, 0), again)


def test_an_unreachable_bus_at_start_is_logged_and_streams_poll_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rayweave.bus")
    url = f"nats://127.0.0.1:{free_port()}"
    for served in _serve(tmp_path / "home", url):
        assert not served.notices.live
        run_id = _start(served.api, 14)
        live = _ws_read(served.api, run_id, 0)
        _check_complete(live, run_id)
        assert [e["type"] for e in live].count("node.succeeded") == STEPS
        deadline = time.monotonic() + 5
        while f"event bus {url} unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"event bus {url} unreachable" in caplog.text
        assert "live event streams poll the store" in caplog.text


def test_workflow_edits_go_over_the_bus_and_the_servers_watch_reads_the_store(on_nats: BusApi) -> None:
    # Another server (a second connection) hears the API's announcements, and the API's own WorkflowWatch reports
    # each change it reads from the store after a notice (its poll is 5 s; these come sooner).
    import queue

    from serve.bus import WorkflowWatch
    from tests.serve.api.conftest import add_doc

    other = NatsBus(on_nats.url)
    assert other.wait_connected(5)
    subscription = other.subscribe("workflows.*")
    assert subscription.active.wait(5)
    watch = on_nats.app.state.workflow_watch
    assert isinstance(watch, WorkflowWatch)
    changes: queue.SimpleQueue[tuple[str, int | None]] = queue.SimpleQueue()
    try:
        with on_nats.api.client() as c:
            r = c.post("/v1/workflows", json={"workflow": add_doc()})
            assert r.status_code == 201, r.text
            wid = r.json()["workflow_id"]
            watch.watch(wid, lambda workflow_id, version: changes.put((workflow_id, version)))
            started = time.monotonic()
            r = c.put(
                f"/v1/workflows/{wid}", json={"workflow": add_doc("add-3")}, headers={"If-Match": '"1"'}
            )
            assert r.status_code == 200, r.text
            assert changes.get(timeout=4) == (wid, 2)
            assert time.monotonic() - started < 4
            assert c.delete(f"/v1/workflows/{wid}").status_code == 204
            assert changes.get(timeout=4) == (wid, None)
        seen: list[dict[str, Any]] = []
        while len(seen) < 3:
            message = subscription.get(timeout=5)
            assert message is not None, f"only {seen} arrived"
            seen.append(dict(message.data))
        assert seen == [
            {"workflow_id": wid, "type": "workflow.saved", "version": 1},
            {"workflow_id": wid, "type": "workflow.saved", "version": 2},
            {"workflow_id": wid, "type": "workflow.deleted", "version": None},
        ]
    finally:
        watch.unwatch(wid)
        other.close()
