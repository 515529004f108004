"""Failed authentication per client address: limited (429 past a burst), audited in a few rows, and never in
the way of a caller with valid credentials. Clients bind loopback addresses of their own (127.0.0.x)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from engine.store import open_store
from serve.config import ServeOptions
from tests.serve.api.conftest import Api, start_api

BURST = 5
WINDOW_S = 3.0  # longer than the 80 requests below take on a loaded machine


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        auth_failures_per_s=0.01,  # no refill within the test
        auth_failure_burst=BURST,
        auth_audit_window_s=WINDOW_S,
        print_admin_key=False,
        recovery=False,
    )
    yield from start_api(Path(tmp_path_factory.mktemp("guarded-home")), options)


def _from(api: Api, address: str, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=api.url, headers=headers, transport=transport, timeout=30)


def _failures(api: Api, client: str) -> list[Any]:
    return [
        e
        for e in api.store.audit.list(action="auth.failed", limit=10_000)
        if e.details.get("client") == client
    ]


def test_a_flood_of_bad_keys_is_limited_per_address(guarded: Api) -> None:
    rows_before = len(guarded.store.audit.list(limit=10_000))
    codes: list[int] = []
    refused: httpx.Response | None = None
    window_start = 0.0
    with _from(guarded, "127.0.0.2") as attacker, _from(guarded, "127.0.0.2", guarded.admin_key) as neighbour:
        for i in range(40):
            bad = {"Authorization": f"Bearer rw_{i:012x}_{'A' * 43}"}
            response = (
                attacker.get("/v1/workflows", headers=bad)
                if i % 2
                else attacker.post("/v1/workflows", headers=bad, json={})
            )
            codes.append(response.status_code)
            if i == 0:
                window_start = time.monotonic()  # the first failure opened the address's audit window
            if response.status_code == 429:
                refused = response
            # A caller with a valid key at the same address (a NAT, a proxy) is served all along.
            assert neighbour.get("/v1/workflows").status_code == 200
    assert codes[:BURST] == [401] * BURST and set(codes[BURST:]) == {429}, codes
    assert refused is not None
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(refused.headers.get_list("x-request-id")) == 1
    assert "too many failed authentications from 127.0.0.2" in refused.json()["detail"]
    # Another address has a budget of its own.
    with _from(guarded, "127.0.0.3", "rw_nope_nope") as other:
        assert other.get("/v1/workflows").status_code == 401
    # 40 failures, one audit row so far (the first, with its reason); no row per request from the middleware.
    rows = _failures(guarded, "127.0.0.2")
    assert len(rows) == 1 and rows[0].details["count"] == 1 and "not valid" in rows[0].details["reason"]
    assert len(guarded.store.audit.list(limit=10_000)) - rows_before == 2  # 127.0.0.2's and 127.0.0.3's
    # When the window ends the other 39 are written as one summary row (on the next authenticated request).
    time.sleep(max(0.0, window_start + WINDOW_S + 0.3 - time.monotonic()))
    with _from(guarded, "127.0.0.4", guarded.admin_key) as c:
        assert c.get("/v1/workflows").status_code == 200
    rows = _failures(guarded, "127.0.0.2")
    assert len(rows) == 2, [r.details for r in rows]
    summary = next(r for r in rows if r.details.get("summary"))
    assert sum(r.details["count"] for r in rows) == 40
    assert summary.details["refused"] == 40 - BURST
    assert summary.outcome == "denied" and sum(summary.details["reasons"].values()) == 39


def test_anonymous_requests_refused_before_authentication_write_no_rows(guarded: Api) -> None:
    before = len(guarded.store.audit.list(limit=10_000))
    with _from(guarded, "127.0.0.5") as c:
        for _ in range(20):
            assert c.post("/v1/no-such-route", json={}).status_code == 404
            assert c.delete("/v1/health").status_code == 405
            malformed = c.post(
                "/v1/workflows", content=b"{not json", headers={"content-type": "application/json"}
            )
            assert malformed.status_code in (400, 401)
    rows = guarded.store.audit.list(limit=10_000)
    assert len(rows) - before <= 1, [(r.action, r.details) for r in rows[: len(rows) - before]]


def test_websockets_count_against_the_same_address(guarded: Api) -> None:
    bad = {"Authorization": "Bearer rw_nope_nope"}
    with _from(guarded, "127.0.0.7") as c:
        assert [c.get("/v1/workflows", headers=bad).status_code for _ in range(BURST)] == [401] * BURST
    host, port = guarded.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), source_address=("127.0.0.7", 0))
    url = guarded.url.replace("http://", "ws://") + "/v1/runs/x1/events"
    with (
        ws_client.connect(url, sock=sock, additional_headers=bad) as ws,
        pytest.raises(ConnectionClosed) as info,
    ):
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4429


def test_counts_not_written_yet_are_written_when_the_server_stops(tmp_path: Path) -> None:
    options = ServeOptions(executor="local", auth_audit_window_s=3600, print_admin_key=False, recovery=False)
    gen = start_api(tmp_path, options)
    api = next(gen)
    try:
        with _from(api, "127.0.0.8", "rw_nope_nope") as c:
            assert [c.get("/v1/workflows").status_code for _ in range(3)] == [401] * 3
        assert [r.details["count"] for r in _failures(api, "127.0.0.8")] == [1]
    finally:
        gen.close()
    with open_store(f"sqlite:///{(tmp_path / 'rayweave.db').resolve()}") as store:
        rows = [e for e in store.audit.list(action="auth.failed") if e.details.get("client") == "127.0.0.8"]
    assert sorted(r.details["count"] for r in rows) == [1, 2]
