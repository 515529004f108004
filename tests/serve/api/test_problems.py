"""Bad input is a 4xx `application/problem+json`, never a 500 and never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.serve.api.conftest import Api, add_doc

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert "Traceback" not in response.text
    return body


def test_malformed_json_is_400(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/workflows", content=b'{"workflow": {', headers={"content-type": "application/json"})
    assert "not valid JSON" in _assert_problem(r, 400)["detail"]


def test_unknown_field_is_422_naming_it(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/workflows", json={"workflow": add_doc(), "colour": "red"})
    body = _assert_problem(r, 422)
    assert body["errors"][0]["field"] == "body.colour"


def test_wrong_type_is_422(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": "not-an-object"})
    assert _assert_problem(r, 422)["errors"][0]["field"] == "body.inputs"


def test_invalid_workflow_is_422_with_diagnostics(api: Api) -> None:
    doc = add_doc()
    doc["nodes"]["sum"]["type"] = "builtin/nope@1"
    with api.client() as c:
        r = c.post("/v1/workflows", json={"workflow": doc})
        listed = c.get("/v1/workflows").json()["items"]
    body = _assert_problem(r, 422)
    assert body["diagnostics"][0]["code"] == "RW101"
    assert body["diagnostics"][0]["node"] == "sum"
    assert all(w["name"] != doc["name"] or w for w in listed)


def test_invalid_inline_run_is_422_and_not_recorded(api: Api) -> None:
    doc = add_doc("never-runs")
    doc["nodes"]["sum"]["in"]["a"] = "$inputs.missing"
    with api.client() as c:
        before = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
        r = c.post("/v1/runs", json={"workflow": doc, "inputs": {"a": 1, "b": 2}})
        after = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
    assert _assert_problem(r, 422)["diagnostics"]
    assert before == after


def test_missing_run_input_is_422(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1}})
    body = _assert_problem(r, 422)
    assert "'b'" in body["detail"]


def test_oversize_body_is_413(api: Api) -> None:
    big = {"workflow": add_doc(), "message": "x" * 2_000_000}
    with api.client() as c:
        r = c.post("/v1/workflows", json=big)
    assert "exceeds" in _assert_problem(r, 413)["detail"]


def test_oversize_chunked_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": {}, "message": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    with api.client() as c:
        r = c.post("/v1/workflows", content=chunks(), headers={"content-type": "application/json"})
    _assert_problem(r, 413)


def test_unknown_route_and_method(api: Api) -> None:
    with api.client() as c:
        missing = c.get("/v1/does-not-exist")
        wrong_method = c.patch("/v1/workflows")
    _assert_problem(missing, 404)
    assert "PATCH" in _assert_problem(wrong_method, 405)["detail"]


def test_bad_query_values_are_4xx(api: Api) -> None:
    with api.client() as c:
        bad_limit = c.get("/v1/runs", params={"limit": "many"})
        bad_cursor = c.get("/v1/runs", params={"cursor": "!!!"})
        bad_status = c.get("/v1/runs", params={"status": "sleeping"})
        bad_type = c.post("/v1/types/check", json={"source": "List[", "target": "Int"})
    _assert_problem(bad_limit, 422)
    _assert_problem(bad_cursor, 400)
    _assert_problem(bad_status, 400)
    _assert_problem(bad_type, 400)


def test_every_response_has_a_request_id(api: Api) -> None:
    with api.client() as c:
        r = c.get("/v1/health", headers={"X-Request-Id": "trace-me"})
        p = c.get("/v1/runs/nope")
    assert r.headers["x-request-id"] == "trace-me"
    assert p.json()["request_id"] == p.headers["x-request-id"]
