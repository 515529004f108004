"""`X-Request-Id`: exactly one on every response, a client's own id kept only when it is a safe token."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.serve.api.conftest import Api, add_doc

FRESH = re.compile(r"[0-9a-f]{32}")


def _one_id(response: httpx.Response) -> str:
    ids = response.headers.get_list("x-request-id")
    assert len(ids) == 1, f"{response.request.method} {response.request.url}: {ids}"
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        assert response.json()["request_id"] == ids[0]
    return ids[0]


def test_every_response_has_exactly_one_request_id(api: Api) -> None:
    with api.client() as admin, httpx.Client(base_url=api.url, timeout=30) as anonymous:
        responses = {
            "200": admin.get("/v1/health"),
            "200 authenticated": admin.get("/v1/workflows"),
            "201": admin.post("/v1/workflows", json={"workflow": add_doc("rid")}),
            "401": anonymous.get("/v1/workflows"),
            "404 route": anonymous.get("/v1/no-such-route"),
            "404 resource": admin.get("/v1/workflows/nope"),
            "405": anonymous.delete("/v1/health"),
            "400 malformed": admin.post(
                "/v1/workflows", content=b"{", headers={"content-type": "application/json"}
            ),
            "422": admin.post("/v1/workflows", json={"unknown": 1}),
            "413": admin.post("/v1/workflows", content=b"x" * (2 << 20)),
            "413 chunked": admin.post("/v1/workflows", content=iter([b"x" * (1 << 20)] * 3)),
            "docs": anonymous.get("/docs"),
            "openapi": anonymous.get("/openapi.json"),
        }
    assert responses["413"].status_code == responses["413 chunked"].status_code == 413
    for label, response in responses.items():
        assert FRESH.fullmatch(_one_id(response)), label


def test_a_safe_client_id_is_echoed(api: Api) -> None:
    with api.client() as c:
        for value in ["req-1.A_b", "0" * 128, "f47ac10b-58cc-4372-a567-0e02b2c3d479"]:
            ok = c.get("/v1/health", headers={"X-Request-Id": value})
            assert _one_id(ok) == value
            problem = c.get("/v1/workflows/nope", headers={"X-Request-Id": value})
            assert problem.status_code == 404 and _one_id(problem) == value


@pytest.mark.parametrize(
    "value",
    [
        b"a b",
        b"<script>alert(1)</script>",
        b"x" * 129,
        b"ab/cd",
        b"id;drop",
        b"\xc3\xa9t\xc3\xa9",
        b"",
        b"%0d%0aSet-Cookie:x",
    ],
)
def test_an_unsafe_client_id_is_replaced(api: Api, value: bytes) -> None:
    with api.client() as c:
        for response in (
            c.get("/v1/health", headers={b"X-Request-Id": value}),
            c.get("/v1/workflows/nope", headers={b"X-Request-Id": value}),
        ):
            echoed = _one_id(response)
            assert FRESH.fullmatch(echoed) and echoed.encode() != value


def test_the_audit_records_the_id_the_response_carries(api: Api) -> None:
    with api.client() as c:
        created = c.post(
            "/v1/workflows", json={"workflow": add_doc("rid-audit")}, headers={"X-Request-Id": "<b>hi</b>"}
        )
        assert created.status_code == 201
        request_id = _one_id(created)
        entries = c.get("/v1/audit", params={"limit": 1000}).json()["items"]
    assert [e for e in entries if e["details"].get("request_id") == request_id]
    assert not [e for e in entries if "<b>" in str(e["details"])]


def test_two_client_ids_give_one(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as c:
        request = c.build_request(
            "GET", "/v1/health", headers=[("X-Request-Id", "one"), ("X-Request-Id", "two")]
        )
        assert _one_id(c.send(request)) in ("one", "two")
