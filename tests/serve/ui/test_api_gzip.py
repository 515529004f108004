"""The API's JSON answers gzip-compressed for the web UI (the node catalog on every page load), on the real app:
plain for clients that do not ask, and the run event streams (SSE, WebSocket) still live."""

from __future__ import annotations

import json
from typing import Any

import httpx
import websockets.sync.client as ws_client


def test_the_catalog_comes_gzipped_when_asked_and_plain_when_not(site: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {site['key']}"}
    with httpx.Client(base_url=site["url"], headers=auth, timeout=30) as api:
        plain = api.get("/v1/nodes", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        packed = api.get("/v1/nodes", headers={"Accept-Encoding": "gzip, deflate, br"})
        assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in packed.headers["vary"]
        assert packed.json() == plain.json()
        # What crosses the wire: a fraction of the JSON (the built-in catalog: about a seventh).
        assert int(packed.headers["content-length"]) < len(plain.content) / 4
        assert packed.headers["x-request-id"]  # the API middleware still wraps it
        # Problem documents are JSON too; a small one goes as it is.
        missing = api.get("/v1/workflows/nope", headers={"Accept-Encoding": "gzip"})
        assert missing.status_code == 404 and "content-encoding" not in missing.headers


def test_run_events_still_stream_live_to_a_client_that_accepts_gzip(site: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {site['key']}"}
    with httpx.Client(base_url=site["url"], headers=auth, timeout=30) as api:
        run = api.post("/v1/runs", json={"workflow_id": site["ids"]["slow-chain"], "inputs": {"x": 1}})
        assert run.status_code in (200, 201, 202), run.text
        run_id = run.json()["id"]
        # SSE: the first events arrive while the run (about 2 s) goes on, uncompressed.
        with api.stream("GET", f"/v1/runs/{run_id}/events", headers={"Accept-Encoding": "gzip"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers
            first = next(line for line in stream.iter_lines() if line.startswith("data: "))
            assert json.loads(first[6:])["run_id"] == run_id
            assert api.get(f"/v1/runs/{run_id}").json()["status"] not in ("succeeded", "failed")
        # The event WebSocket (its upgrade request asks for gzip too) replays the run's events.
        ws_url = site["url"].replace("http", "ws", 1) + f"/v1/runs/{run_id}/events?after=0"
        with ws_client.connect(ws_url, additional_headers={**auth, "Accept-Encoding": "gzip"}) as ws:
            assert json.loads(ws.recv(timeout=10))["run_id"] == run_id
