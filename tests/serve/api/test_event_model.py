"""One event model with one JSON form, on SQLite and PostgreSQL.

An event the engine records (`EventLog`, persisted by the durable `StoreEventSink`) reads back equal from the
store, from the API's WebSocket and Server-Sent Events streams, and from the HTTP client (`Event.from_json`);
the WebSocket messages, the SSE `data` and `Event.to_json()` of the stored events are the same JSON, for a
hand-made event sequence and for a real run started through `POST /v1/runs`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosedOK

from engine.durable.sink import StoreEventSink
from engine.execution.events import Event, EventLog
from nodes.states import EventType, RunStatus
from serve.api.v1.schemas import RunEvent
from serve.client import Client
from serve.config import ServeOptions
from tests.postgres import postgres_database
from tests.serve.api.conftest import Api, add_doc, start_api

#: The fields of an event's JSON form, as the API has always sent them.
FIELDS = ["run_id", "seq", "type", "node", "attempt", "time", "payload"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served API on each database (in-process executor)."""
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    home: Path = tmp_path_factory.mktemp(f"event-model-{request.param}")
    if request.param == "sqlite":
        yield from start_api(home, options)
        return
    with postgres_database("rayweave_event_model") as url:
        yield from start_api(home, options, database_url=url)


def _ws_messages(api: Api, run_id: str) -> list[dict[str, Any]]:
    url = api.url.replace("http://", "ws://") + f"/v1/runs/{run_id}/events?after=0"
    messages: list[dict[str, Any]] = []
    with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {api.admin_key}"}) as ws:
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=20)))
        except ConnectionClosedOK:
            pass
    return messages


def _sse_messages(api: Api, run_id: str) -> list[dict[str, Any]]:
    """The JSON `data` of every Server-Sent Event of the run; its `id` and `event` lines are its seq and type."""
    messages: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    with (
        httpx.Client(base_url=api.url, timeout=20) as c,
        c.stream(
            "GET", f"/v1/runs/{run_id}/events", headers={"Authorization": f"Bearer {api.admin_key}"}
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    data = json.loads(fields["data"])
                    assert (fields["id"], fields["event"]) == (str(data["seq"]), data["type"])
                    messages.append(data)
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return messages


def _recorded_run(api: Api) -> tuple[str, list[Event]]:
    """A run whose events the engine's `EventLog` records through the durable sink into the served store: a
    node that logs, reports progress and a partial output, is retried, and succeeds."""
    run_id = api.store.runs.create(document=add_doc(), inputs={"a": 1, "b": 2}).run.id
    sink = StoreEventSink(api.store.connect_url, run_id, heartbeat_s=0)
    log = EventLog(run_id, sink)
    try:
        log.append(EventType.RUN_QUEUED, payload={"workflow": "add-two"})
        log.append(EventType.RUN_STARTED, payload={"workflow": "add-two"})
        log.append(EventType.NODE_STARTED, "sum", 1, {"type": "builtin/add@1"})
        log.append(EventType.NODE_LOG, "sum", 1, {"level": "INFO", "message": "adding é ✓"})
        log.append(EventType.NODE_PROGRESS, "sum", 1, {"fraction": 0.5, "message": "half way"})
        log.append(
            EventType.NODE_RETRYING, "sum", 1, {"error": "ValueError", "message": "flaky", "delay_s": 0.1}
        )
        log.append(EventType.NODE_STARTED, "sum", 2, {"type": "builtin/add@1"})
        log.append(
            EventType.NODE_OUTPUT, "sum", 2, {"port": "out", "value": [1, 2.5, {"k": None, "ok": True}]}
        )
        log.append(EventType.NODE_SUCCEEDED, "sum", 2, {"duration_s": 0.25})
        log.append(EventType.RUN_SUCCEEDED, payload={"duration_s": 0.5})
    finally:
        sink.store.close()
    return run_id, log.after(0)


def test_an_engine_event_reads_back_equal_from_the_store_the_streams_and_the_client(served: Api) -> None:
    run_id, recorded = _recorded_run(served)
    assert served.store.runs.get(run_id).status == RunStatus.SUCCEEDED  # the sink kept the run row in step

    assert served.store.events.read(run_id) == recorded
    with Client(served.url, served.admin_key) as client:
        received = list(client.run(run_id).events())
    assert received == recorded
    assert all(isinstance(e, Event) and isinstance(e.type, EventType) for e in received)

    # The streams send the one JSON form: field for field what `to_json` gives, and it parses back equal.
    expected = [e.to_json() for e in recorded]
    ws, sse = _ws_messages(served, run_id), _sse_messages(served, run_id)
    assert ws == expected
    assert sse == expected
    assert all(list(message) == FIELDS for message in ws)
    assert [Event.from_json(m) for m in sse] == recorded
    retried = ws[5]
    assert (retried["type"], retried["node"], retried["attempt"]) == ("node.retrying", "sum", 1)
    assert retried["payload"] == {"error": "ValueError", "message": "flaky", "delay_s": 0.1, "attempt": 1}
    assert ws[0]["node"] is None and ws[0]["attempt"] is None
    assert isinstance(ws[0]["time"], float) and abs(ws[0]["time"] - time.time()) < 300


def test_a_real_run_sends_the_same_json_on_every_stream(served: Api) -> None:
    with Client(served.url, served.admin_key) as client:
        run = client.submit(add_doc(), {"a": 2, "b": 3})
        received = list(run.events())
        assert run.wait()["status"] == RunStatus.SUCCEEDED
    stored = served.store.events.read(run.id)
    assert received == stored
    assert received[0].type == EventType.RUN_QUEUED
    assert received[-1].type == EventType.RUN_SUCCEEDED
    succeeded = [e for e in received if e.type == EventType.NODE_SUCCEEDED]
    assert [(e.node, e.attempt) for e in succeeded] == [("sum", 1)]

    expected = [e.to_json() for e in stored]
    assert _ws_messages(served, run.id) == expected
    assert _sse_messages(served, run.id) == expected


def test_the_openapi_document_describes_that_json(served: Api) -> None:
    run_id, _ = _recorded_run(served)
    with httpx.Client(base_url=served.url) as c:
        document = c.get("/openapi.json").json()
    sse = document["paths"]["/v1/runs/{run_id}/events"]["get"]["responses"]["200"]["content"]
    assert sse == {"text/event-stream": {"schema": {"$ref": "#/components/schemas/RunEvent"}}}
    schema = document["components"]["schemas"]["RunEvent"]
    assert schema["required"] == FIELDS
    # v1 is frozen: anomaly.detected (after a run's final event) is listed by /v1/analytics/anomalies instead.
    v1_types = [str(t) for t in EventType if t != EventType.ANOMALY_DETECTED]
    assert schema["properties"]["type"]["enum"] == v1_types
    for message in _ws_messages(served, run_id):
        assert RunEvent.model_validate(message).model_dump(mode="json") == message
