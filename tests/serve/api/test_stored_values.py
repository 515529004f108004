"""Reading workflows and runs stored before the input limits existed, on SQLite and PostgreSQL (issue 16).

Such rows are made here directly through the store, as an older server stored them: a workflow whose constant
nests 300 levels, a run whose inputs or outputs do, and (SQLite only: PostgreSQL never stored them) lone
surrogates in outputs, node errors and events. Every GET of them was a 500, forever. Now a resource that cannot
be sent is a 409 problem naming it, the field and what to do; messages and events are sent sanitized.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client

from engine.store import NewEvent
from serve.config import ServeOptions
from tests.postgres import postgres_database
from tests.serve.api.conftest import Api, add_doc, start_api

PROBLEM = "application/problem+json"


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served API on each database (in-process executor)."""
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    home: Path = tmp_path_factory.mktemp(f"stored-{request.param}")
    if request.param == "sqlite":
        yield from start_api(home, options)
        return
    with postgres_database("rayweave_stored") as url:
        yield from start_api(home, options, database_url=url)


def _conflict(response: httpx.Response) -> str:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith("/stored-value") and "Traceback" not in response.text
    return str(body["detail"])


def _admin_id(api: Api) -> str:
    return str(api.store.users.get_by_username("admin").id)


def test_a_workflow_stored_too_deep_is_a_409_saying_what_to_do(served: Api) -> None:
    document = add_doc("deep-constant")
    document["nodes"]["c"] = {"type": "builtin/constant@1", "params": {"value": _deep(300)}}
    version = served.store.workflows.create(document, name="deep-constant", owner=_admin_id(served))
    wf = version.workflow_id
    with served.client() as c:
        detail = _conflict(c.get(f"/v1/workflows/{wf}"))
        assert f"workflow {wf!r} ('deep-constant') version 1 holds a value that cannot be sent" in detail
        assert "workflow.nodes.c.params.value[0][0]" in detail and "nests deeper than 64 levels" in detail
        assert f'PUT /v1/workflows/{wf} with If-Match: "1"' in detail
        _conflict(c.get(f"/v1/workflows/{wf}/versions/1"))
        assert c.get("/v1/workflows").status_code == 200
        assert c.get(f"/v1/workflows/{wf}/versions").status_code == 200
        # What the problem says to do works: a corrected version is served again.
        fixed = c.put(
            f"/v1/workflows/{wf}", json={"workflow": add_doc("deep-constant")}, headers={"If-Match": '"1"'}
        )
        assert fixed.status_code == 200, fixed.text
        latest = c.get(f"/v1/workflows/{wf}")
        assert latest.status_code == 200 and latest.headers["ETag"] == '"2"'


def test_a_run_stored_too_deep_is_a_409_and_its_other_reads_answer(served: Api) -> None:
    owner = _admin_id(served)
    deep_inputs = served.store.runs.create(document=add_doc(), inputs={"a": _deep(300), "b": 1}, owner=owner)
    deep_outputs = served.store.runs.create(document=add_doc(), inputs={"a": 1, "b": 2}, owner=owner)
    served.store.runs.update_status(deep_outputs.run.id, "succeeded", outputs={"total": _deep(300)})
    with served.client() as c:
        run_id = deep_inputs.run.id
        detail = _conflict(c.get(f"/v1/runs/{run_id}"))
        assert f"run {run_id!r} (queued) holds a value that cannot be sent" in detail
        assert "inputs.a[0]" in detail and f"GET /v1/runs/{run_id}/events" in detail
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {}

        run_id = deep_outputs.run.id
        assert c.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"
        detail = _conflict(c.get(f"/v1/runs/{run_id}/outputs"))
        assert "outputs.total[0]" in detail
        listed = c.get("/v1/runs")
        assert listed.status_code == 200
        assert {deep_inputs.run.id, run_id} <= {r["id"] for r in listed.json()["items"]}


def test_surrogates_stored_on_sqlite_are_a_409_in_outputs_and_sanitized_in_messages(api: Api) -> None:
    # SQLite only (the module's `api`): PostgreSQL never stored a lone surrogate.
    served = api
    store = served.store
    run = store.runs.create(document=add_doc(), inputs={"a": 1, "b": 2}, owner=_admin_id(served)).run
    attempt = store.node_runs.start(run.id, "sum", node_type="builtin/add@1").attempt
    store.node_runs.finish(
        run.id, "sum", attempt, status="failed", error={"type": "E", "message": "bad \ud800"}
    )
    store.events.append(
        run.id, [NewEvent("node.log", "sum", {"level": "INFO", "message": "line \udc00 \x00"})]
    )
    store.events.append(
        run.id, [NewEvent("run.failed", None, {"failed_nodes": ["sum"], "reason": "r \ud800"})]
    )
    store.runs.update_status(
        run.id, "failed", outputs={"total": "x\ud800"}, error={"failed_nodes": ["sum"], "reason": "r \ud800"}
    )
    with served.client() as c:
        assert "outputs.total: contains a lone UTF-16 surrogate" in _conflict(
            c.get(f"/v1/runs/{run.id}/outputs")
        )
        detail = c.get(f"/v1/runs/{run.id}")
        assert detail.status_code == 200, detail.text
        assert detail.json()["error"]["reason"] == "r \ufffd"
        assert detail.json()["nodes"][0]["error"]["message"] == "bad \ufffd"
        stream = c.get(f"/v1/runs/{run.id}/events")
        assert stream.status_code == 200
        sent = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: ")]
        assert [e["payload"].get("message") for e in sent][:1] == ["line \ufffd \ufffd"]
    url = served.url.replace("http://", "ws://") + f"/v1/runs/{run.id}/events"
    with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {served.admin_key}"}) as ws:
        first = json.loads(ws.recv(timeout=10))
        second = json.loads(ws.recv(timeout=10))
    assert first["payload"]["message"] == "line \ufffd \ufffd" and second["payload"]["reason"] == "r \ufffd"
