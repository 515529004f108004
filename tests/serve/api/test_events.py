"""Live events over WebSocket and SSE: in order, live while running, closed at the end, and a reconnect with
the last sequence number misses nothing and repeats nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from tests.serve.api.conftest import ALL_USER_SCOPES, Api, sleep_chain_doc

STEPS = 8


def _start(api: Api, x: int) -> str:
    with api.client() as c:
        r = c.post("/v1/runs", json={"workflow": sleep_chain_doc(STEPS, 0.05), "inputs": {"x": x}})
    assert r.status_code == 202
    return str(r.json()["id"])


def _ws_url(api: Api, run_id: str, after: int = 0) -> str:
    return api.url.replace("http://", "ws://") + f"/v1/runs/{run_id}/events?after={after}"


def _auth(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.admin_key}"}


def _ws_read(api: Api, run_id: str, after: int, limit: int | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with ws_client.connect(_ws_url(api, run_id, after), additional_headers=_auth(api)) as ws:
        try:
            while limit is None or len(events) < limit:
                events.append(json.loads(ws.recv(timeout=20)))
        except ConnectionClosedOK:
            pass
    return events


def _sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """A minimal SSE reader: yields the JSON `data` of each event, checking `id` matches its `seq`."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields.get("id") == str(event["seq"]) and fields.get("event") == event["type"]
                yield event
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


def _sse_read(
    api: Api, run_id: str, last_event_id: int | None, limit: int | None = None
) -> list[dict[str, Any]]:
    headers = _auth(api)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=api.url, timeout=20) as c,
        c.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in _sse_events(response):
            events.append(event)
            if limit is not None and len(events) >= limit:
                break
    return events


def _check_complete(events: list[dict[str, Any]], run_id: str) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), seqs
    assert all(e["run_id"] == run_id for e in events)
    assert events[0]["type"] == "run.queued" and events[-1]["type"] == "run.succeeded"
    assert [e["type"] for e in events].count("node.succeeded") == STEPS


def test_websocket_reconnect_misses_nothing_and_repeats_nothing(api: Api) -> None:
    run_id = _start(api, 1)
    first = _ws_read(api, run_id, 0, limit=4)
    assert len(first) == 4
    rest = _ws_read(api, run_id, first[-1]["seq"])
    _check_complete(first + rest, run_id)
    # While the first connection was open the run was still going: events arrived live.
    assert first[-1]["type"] != "run.succeeded"


def test_sse_reconnect_with_last_event_id(api: Api) -> None:
    run_id = _start(api, 2)
    first = _sse_read(api, run_id, None, limit=5)
    rest = _sse_read(api, run_id, first[-1]["seq"])
    _check_complete(first + rest, run_id)


def test_late_subscribers_get_the_whole_history_then_the_stream_closes(api: Api) -> None:
    run_id = _start(api, 3)
    live = _ws_read(api, run_id, 0)
    _check_complete(live, run_id)
    assert _ws_read(api, run_id, 0) == live
    assert _sse_read(api, run_id, None) == live
    assert _sse_read(api, run_id, live[-2]["seq"]) == live[-1:]
    assert _ws_read(api, run_id, live[-1]["seq"]) == []


def test_sse_after_query_parameter(api: Api) -> None:
    run_id = _start(api, 4)
    live = _sse_read(api, run_id, None)
    with (
        httpx.Client(base_url=api.url, timeout=20) as c,
        c.stream("GET", f"/v1/runs/{run_id}/events", params={"after": 3}, headers=_auth(api)) as response,
    ):
        assert [e["seq"] for e in _sse_events(response)] == [e["seq"] for e in live[3:]]


def test_websocket_of_another_owner_is_refused_with_404(api: Api) -> None:
    run_id = _start(api, 5)
    stranger = api.key(ALL_USER_SCOPES, username="ws-stranger")
    with (
        ws_client.connect(
            _ws_url(api, run_id), additional_headers={"Authorization": f"Bearer {stranger}"}
        ) as ws,
        pytest.raises(ConnectionClosed) as info,
    ):
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4404


def test_a_quiet_sse_stream_gets_keepalive_comments_and_loses_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run quiet for longer than a proxy's idle timeout (a long node, a resume after a crash) keeps its SSE
    stream open with comment lines, which SSE clients ignore; the events after the silence still arrive."""
    import serve.streams
    from engine.store import NewEvent

    monkeypatch.setattr(serve.streams, "KEEPALIVE_S", 0.2)
    run = api.store.runs.create(document={"name": "quiet"}, owner="admin", status="running").run
    api.store.events.append(run.id, [NewEvent("run.started")])
    lines: list[str] = []
    with (
        httpx.Client(base_url=api.url, timeout=20) as c,
        c.stream("GET", f"/v1/runs/{run.id}/events", headers=_auth(api)) as response,
    ):
        for line in response.iter_lines():
            lines.append(line)
            if lines.count(": keep-alive") == 2:
                api.store.events.append(run.id, [NewEvent("run.succeeded")])
                api.store.runs.update_status(run.id, "succeeded")
    data = [json.loads(line[len("data: ") :])["type"] for line in lines if line.startswith("data: ")]
    assert data == ["run.started", "run.succeeded"]
    first_comment = lines.index(": keep-alive")
    assert lines.index("event: run.started") < first_comment < lines.index("event: run.succeeded")
