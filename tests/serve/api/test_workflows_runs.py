"""Workflow CRUD with optimistic versions; runs: idempotent creation, status, outputs, listing, cancel."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.serve.api.conftest import ALL_USER_SCOPES, Api, add_doc, sleep_chain_doc


def _wait_status(c: httpx.Client, run_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = c.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_workflow_lifecycle_with_optimistic_updates(api: Api) -> None:
    with api.client(api.key(ALL_USER_SCOPES, username="wf-owner")) as c:
        created = c.post("/v1/workflows", json={"workflow": add_doc("lifecycle"), "message": "first"})
        assert created.status_code == 201 and created.headers["ETag"] == '"1"'
        wf = created.json()["workflow_id"]
        assert created.headers["Location"] == f"/v1/workflows/{wf}"
        changed = add_doc("lifecycle")
        changed["nodes"]["sum"]["type"] = "builtin/multiply@1"

        no_precondition = c.put(f"/v1/workflows/{wf}", json={"workflow": changed})
        assert no_precondition.status_code == 428
        stale = c.put(f"/v1/workflows/{wf}", json={"workflow": changed}, headers={"If-Match": '"7"'})
        assert stale.status_code == 412 and "latest version is 1" in stale.json()["detail"]
        saved = c.put(
            f"/v1/workflows/{wf}", json={"workflow": changed, "message": "mul"}, headers={"If-Match": '"1"'}
        )
        assert saved.status_code == 200 and saved.json()["version"] == 2 and saved.headers["ETag"] == '"2"'
        again = c.put(f"/v1/workflows/{wf}", json={"workflow": changed}, headers={"If-Match": '"1"'})
        assert again.status_code == 412  # the second of two editors who both read version 1 loses

        latest = c.get(f"/v1/workflows/{wf}").json()
        assert latest["version"] == 2 and latest["workflow"]["nodes"]["sum"]["type"] == "builtin/multiply@1"
        history = c.get(f"/v1/workflows/{wf}/versions").json()["items"]
        assert [v["version"] for v in history] == [2, 1] and history[0]["message"] == "mul"
        first = c.get(f"/v1/workflows/{wf}/versions/1").json()
        assert first["workflow"]["nodes"]["sum"]["type"] == "builtin/add@1"
        assert c.get(f"/v1/workflows/{wf}/versions/9").status_code == 404

        # Runs of a stored workflow use the latest version unless one is named.
        latest_run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 3, "b": 4}}).json()["id"]
        v1_run = c.post(
            "/v1/runs", json={"workflow_id": wf, "version": 1, "inputs": {"a": 3, "b": 4}}
        ).json()["id"]
        assert _wait_status(c, latest_run)["workflow_version"] == 2
        assert c.get(f"/v1/runs/{latest_run}/outputs").json()["outputs"] == {"total": 12}
        assert _wait_status(c, v1_run)["workflow_version"] == 1
        assert c.get(f"/v1/runs/{v1_run}/outputs").json()["outputs"] == {"total": 7}

        assert c.delete(f"/v1/workflows/{wf}").status_code == 204
        assert c.get(f"/v1/workflows/{wf}").status_code == 404
        assert wf not in {w["id"] for w in c.get("/v1/workflows").json()["items"]}


def test_run_creation_is_idempotent(api: Api) -> None:
    body = {"workflow": add_doc("idem"), "inputs": {"a": 40, "b": 2}}
    with api.client(api.key(ALL_USER_SCOPES, username="idem-user")) as c:
        first = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "order-17"})
        second = c.post("/v1/runs", json=body, headers={"Idempotency-Key": "order-17"})
        other = c.post(
            "/v1/runs", json={**body, "inputs": {"a": 1, "b": 2}}, headers={"Idempotency-Key": "order-17"}
        )
        runs = c.get("/v1/runs").json()["items"]
    assert first.status_code == 202 and first.json()["created"] is True
    assert second.status_code == 200 and second.json()["created"] is False
    assert second.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert [r["id"] for r in runs] == [first.json()["id"]]


def test_run_status_reports_every_node(api: Api) -> None:
    doc = add_doc("two-steps")
    doc["nodes"]["double"] = {"type": "builtin/multiply@1", "in": {"a": "sum", "b": {"value": 2}}}
    doc["outputs"] = {"total": "double"}
    with api.client() as c:
        run_id = c.post("/v1/runs", json={"workflow": doc, "inputs": {"a": 1, "b": 5}}).json()["id"]
        run = _wait_status(c, run_id)
        outputs = c.get(f"/v1/runs/{run_id}/outputs").json()
    assert run["status"] == "succeeded" and outputs["outputs"] == {"total": 12}
    nodes = {n["node"]: n for n in run["nodes"]}
    assert set(nodes) == {"sum", "double"}
    for node in nodes.values():
        assert node["status"] == "succeeded" and node["attempts"] == 1
        assert node["started_at"] and node["finished_at"] and node["duration_s"] >= 0
    assert run["started_at"] and run["finished_at"] and run["last_seq"] >= 6


def test_list_binding_over_http(api: Api) -> None:
    # A list port bound element by element (ADR 005): validated, stored as written, run durably.
    doc = add_doc("fan-in")
    doc["nodes"]["double"] = {"type": "builtin/multiply@1", "in": {"a": "sum", "b": {"value": 2}}}
    doc["nodes"]["all"] = {
        "type": "builtin/sum@1",
        "in": {"values": ["sum", "double.out", "$inputs.a", {"value": 100}]},
    }
    doc["outputs"] = {"total": "all"}
    with api.client() as c:
        assert c.post("/v1/workflows/validate", json={"workflow": doc}).json()["valid"] is True
        created = c.post("/v1/workflows", json={"workflow": doc}).json()
        stored = c.get(f"/v1/workflows/{created['workflow_id']}").json()["workflow"]
        assert stored["nodes"]["all"]["in"]["values"] == ["sum", "double.out", "$inputs.a", {"value": 100}]
        run_id = c.post(
            "/v1/runs", json={"workflow_id": created["workflow_id"], "inputs": {"a": 1, "b": 5}}
        ).json()["id"]
        assert _wait_status(c, run_id)["status"] == "succeeded"
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"total": 6 + 12 + 1 + 100}
        bad = dict(
            doc, nodes={**doc["nodes"], "all": {"type": "builtin/sum@1", "in": {"values": ["sum", []]}}}
        )
        problem = c.post("/v1/workflows/validate", json={"workflow": bad})
        assert problem.status_code == 200 and problem.json()["valid"] is False
        (diagnostic,) = problem.json()["diagnostics"]
        assert diagnostic["field"] == "nodes.all.in.values"
        assert "item 1 of a list binding is itself a list" in problem.text


def test_the_output_of_a_map_node_is_returned(api: Api) -> None:
    # A map node's list is an output like any other (it was missing from /outputs, the run said succeeded).
    square = {
        "format": "rayweave.workflow/1",
        "name": "square",
        "inputs": {"item": {"type": "Int"}},
        "nodes": {"sq": {"type": "builtin/multiply@1", "in": {"a": "$inputs.item", "b": "$inputs.item"}}},
        "outputs": {"out": "sq.out"},
    }
    doc = {
        "format": "rayweave.workflow/1",
        "name": "squares",
        "inputs": {"numbers": {"type": "List[Int]"}},
        "nodes": {
            "squares": {
                "type": "builtin/map@1",
                "in": {"items": "$inputs.numbers"},
                "params": {"workflow": square},
            },
            "total": {"type": "builtin/sum@1", "in": {"values": "squares"}},
        },
        "outputs": {"squares": "squares.out", "total": "total"},
    }
    with api.client() as c:
        run_id = c.post("/v1/runs", json={"workflow": doc, "inputs": {"numbers": [1, 2, 3]}}).json()["id"]
        run = _wait_status(c, run_id)
        outputs = c.get(f"/v1/runs/{run_id}/outputs").json()
    assert run["status"] == "succeeded"
    assert outputs["outputs"] == {"squares": [1, 4, 9], "total": 14} and outputs["skipped_outputs"] == []


def test_failed_node_error_is_reported(api: Api) -> None:
    doc = {
        "format": "rayweave.workflow/1",
        "name": "divide",
        "inputs": {"a": {"type": "Float"}, "b": {"type": "Float"}},
        "nodes": {"q": {"type": "builtin/divide@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}}},
        "outputs": {"q": "q"},
    }
    with api.client() as c:
        run_id = c.post("/v1/runs", json={"workflow": doc, "inputs": {"a": 1.0, "b": 0.0}}).json()["id"]
        run = _wait_status(c, run_id)
    assert run["status"] == "failed"
    node = run["nodes"][0]
    assert node["status"] == "failed" and node["error"] and "traceback" not in node["error"]


def test_list_runs_filters_and_pages(api: Api) -> None:
    key = api.key(ALL_USER_SCOPES, username="lister")
    with api.client(key) as c:
        ids = [
            c.post("/v1/runs", json={"workflow": add_doc("paged"), "inputs": {"a": i, "b": 1000}}).json()[
                "id"
            ]
            for i in range(5)
        ]
        for run_id in ids:
            _wait_status(c, run_id)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/runs", params=params).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        succeeded = c.get("/v1/runs", params={"status": "succeeded", "limit": 50}).json()["items"]
        failed = c.get("/v1/runs", params={"status": "failed"}).json()["items"]
    assert seen == list(reversed(ids))
    assert {r["id"] for r in succeeded} == set(ids) and failed == []


def test_cancel_stops_a_running_run(api: Api) -> None:
    with api.client() as c:
        run_id = c.post("/v1/runs", json={"workflow": sleep_chain_doc(20, 0.1), "inputs": {"x": 99}}).json()[
            "id"
        ]
        time.sleep(0.3)
        cancelled = c.post(f"/v1/runs/{run_id}/cancel")
        run = _wait_status(c, run_id)
        again = c.post(f"/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 202
    assert run["status"] == "cancelled"
    statuses = [n["status"] for n in run["nodes"]]
    assert statuses.count("succeeded") < 20 and "cancelled" in statuses, statuses
    assert again.status_code == 202 and again.json()["status"] == "cancelled"


def test_catalogs(api: Api) -> None:
    with api.client() as c:
        nodes = c.get("/v1/nodes").json()["nodes"]
        add = c.get("/v1/nodes/builtin/add@1").json()
        missing = c.get("/v1/nodes/builtin/nope@1")
        control = c.get("/v1/nodes", params={"category": "control"}).json()["nodes"]
        types = c.get("/v1/types").json()
        check = c.post("/v1/types/check", json={"source": "Float", "target": "Int"}).json()
        valid = c.post("/v1/workflows/validate", json={"workflow": add_doc()}).json()
    assert "builtin/add@1" in {n["id"] for n in nodes}
    assert [p["name"] for p in add["inputs"]] == ["a", "b"]
    assert missing.status_code == 404 and "builtin/" in missing.json()["detail"]
    assert control and all(n["category"] == "control" for n in control)
    assert {p["name"] for p in types["primitives"]} >= {"Int", "Float", "String"}
    assert check["assignable"] is False and check["coercion"]["kind"] == "explicit"
    assert valid == {"valid": True, "diagnostics": []}


def test_keys_lifecycle(api: Api) -> None:
    manager = api.key(["keys:admin", "workflows:read"], username="key-manager")
    with api.client(manager) as c:
        made = c.post("/v1/keys", json={"name": "ci", "scopes": ["workflows:read"]})
        too_much = c.post("/v1/keys", json={"scopes": ["runs:write"]})
        unknown = c.post("/v1/keys", json={"scopes": ["root"]})
        listed = c.get("/v1/keys").json()["items"]
    assert made.status_code == 201 and made.json()["key"].startswith("rw_")
    assert too_much.status_code == 403 and unknown.status_code == 400
    assert made.json()["id"] in {k["id"] for k in listed} and all("key" not in k for k in listed)
    secret = made.json()["key"]
    with api.client(secret) as c:
        assert c.get("/v1/workflows").status_code == 200
    with api.client(manager) as c:
        assert c.delete(f"/v1/keys/{made.json()['id']}").status_code == 204
    with api.client(secret) as c:
        assert c.get("/v1/workflows").status_code == 401


def test_metrics_count_requests_by_route_and_runs_by_status(api: Api) -> None:
    with api.client() as c:
        # A succeeded run of its own: the test must not depend on what earlier tests left in the store.
        accepted = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}})
        assert _wait_status(c, accepted.json()["id"])["status"] == "succeeded"
        c.get("/v1/runs/does-not-exist")
        text = c.get("/metrics").text
    assert 'rayweave_http_requests_total{method="GET",route="/v1/runs/{run_id}",status="404"}' in text
    assert "rayweave_http_request_duration_seconds_bucket" in text
    assert 'rayweave_runs{status="succeeded"}' in text
