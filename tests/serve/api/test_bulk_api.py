"""`GET /v1/export` and `POST /v1/import` (NDJSON, streamed both ways) and the CloudEvents form of the SSE
stream (`GET /v1/runs/{id}/events?format=cloudevents`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from cloudevents.core.formats.json import JSONFormat

from engine.store import NewEvent
from tests.serve.api.conftest import ALL_USER_SCOPES, Api, add_doc, wait_for_status


def _finished_run(api: Api) -> str:
    with api.client() as c:
        created = c.post("/v1/workflows", json={"workflow": add_doc("bulk-add")}).json()
        r = c.post("/v1/runs", json={"workflow_id": created["workflow_id"], "inputs": {"a": 1, "b": 2}})
        assert r.status_code == 202, r.text
        wait_for_status(c, r.json()["id"], "succeeded")
    return str(r.json()["id"])


def _export(api: Api, **params: str) -> list[bytes]:
    with api.client() as c, c.stream("GET", "/v1/export", params=params) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/x-ndjson"
        return [line.encode() + b"\n" for line in r.iter_lines() if line]


def _chunks(lines: list[bytes]) -> Iterator[bytes]:
    yield from lines  # a generator body: httpx sends it chunked, without a Content-Length


def test_export_then_import_round_trip(api: Api) -> None:
    run_id = _finished_run(api)
    lines = _export(api)
    records = [json.loads(line) for line in lines]
    assert records[0]["format"] == "rayweave.ndjson/1" and records[-1]["kind"] == "end"
    events = [r for r in records if r["kind"] == "event" and r["run_id"] == run_id]
    assert events[0]["type"] == "run.queued" and events[-1]["type"] == "run.succeeded"
    with api.client() as c:
        again = c.post("/v1/import", content=_chunks(lines), headers={"Content-Type": "application/x-ndjson"})
        assert again.status_code == 200, again.text
        assert again.json()["added"] == {}
        assert again.json()["skipped"]["events"] == sum(1 for r in records if r["kind"] == "event")
    api.store.runs.delete(run_id)  # gone here: the import brings it back with its events
    with api.client() as c:
        back = c.post("/v1/import", content=_chunks(lines)).json()
    assert back["added"]["runs"] == 1 and back["added"]["events"] == len(events)
    assert [e.seq for e in api.store.events.read(run_id)] == [e["seq"] for e in events]
    only = [json.loads(line)["kind"] for line in _export(api, kinds="runs", since="2000-01-01T00:00:00")]
    assert set(only) == {"header", "run", "end"}


def test_import_streams_bodies_beyond_the_request_limit_and_names_bad_lines(api: Api) -> None:
    run = api.store.runs.create(document=add_doc("bulky")).run
    api.store.events.append(run.id, [NewEvent("node.log", "sum", {"m": "x" * 500}) for _ in range(3000)])
    lines = _export(api, kinds="runs,events")
    assert sum(len(line) for line in lines) > 1_048_576  # more than ServeOptions.max_body_bytes
    api.store.runs.delete(run.id)
    with api.client() as c:
        r = c.post("/v1/import", content=_chunks(lines))
        assert r.status_code == 200, r.text
        assert r.json()["added"]["events"] >= 3000
        broken = [*lines[:2], b'{"kind":"event","run_id":"nope","seq":1}\n', *lines[2:]]
        r = c.post("/v1/import", content=_chunks(broken))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["line"] == 3 and problem["field"] == "type"
    assert problem["detail"].startswith("line 3, field 'type': Field required (in the event record)")


def test_export_and_import_are_for_admins_and_check_their_parameters(api: Api) -> None:
    key = api.key(ALL_USER_SCOPES, username="not-admin")
    with api.client(key) as c:
        assert c.get("/v1/export").status_code == 403
        assert c.post("/v1/import", content=b"{}\n").status_code == 403
    with api.client() as c:
        r = c.get("/v1/export", params={"kinds": "runs,bogus"})
        assert r.status_code == 400 and "unknown kind(s) ['bogus']" in r.json()["detail"]


def _sse_data(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]


def test_sse_events_as_cloudevents(api: Api) -> None:
    run_id = _finished_run(api)
    with (
        api.client() as c,
        c.stream("GET", f"/v1/runs/{run_id}/events", params={"format": "cloudevents"}) as r,
    ):
        assert r.status_code == 200
        clouds = _sse_data(r)
    native = api.store.events.read(run_id)
    assert [c["id"] for c in clouds] == [f"{run_id}:{e.seq}" for e in native]
    for cloud, event in zip(clouds, native, strict=True):
        parsed = JSONFormat().read(None, json.dumps(cloud))
        assert parsed.get_type() == f"io.rayweave.{event.type}"
        assert parsed.get_source() == f"/rayweave/runs/{run_id}"
        assert parsed.get_subject() == event.node
        assert parsed.get_time() is not None and abs(parsed.get_time().timestamp() - event.time) < 1e-5
