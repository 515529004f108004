"""The auth matrix over every route of the OpenAPI document, tenancy, rate limits and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from serve.config import ServeOptions
from tests.serve.api.conftest import ALL_USER_SCOPES, Api, add_doc, start_api

OPEN_ROUTES = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
}

#: The routes of DESIGN.md ("HTTP API (serve), version 1") plus /v1/audit and key rotation (issue 18); the document
#: must offer exactly these.
DESIGNED_ROUTES = {
    ("GET", "/v1/types"),
    ("POST", "/v1/types/check"),
    ("GET", "/v1/nodes"),
    ("GET", "/v1/nodes/{type_id}"),
    ("POST", "/v1/workflows/validate"),
    ("POST", "/v1/workflows/draft"),  # natural language to a draft (issue 20)
    ("GET", "/v1/suggestions"),  # node suggestions (issue 20)
    ("POST", "/v1/suggestions"),
    ("POST", "/v1/workflows"),
    ("GET", "/v1/workflows"),
    ("GET", "/v1/workflows/{workflow_id}"),
    ("PUT", "/v1/workflows/{workflow_id}"),
    ("DELETE", "/v1/workflows/{workflow_id}"),
    ("GET", "/v1/workflows/{workflow_id}/versions"),
    ("GET", "/v1/workflows/{workflow_id}/versions/{version}"),
    ("POST", "/v1/workflows/{workflow_id}/collab/save"),  # co-editing (issue 23)
    ("POST", "/v1/runs"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/{run_id}"),
    ("GET", "/v1/runs/{run_id}/outputs"),
    ("GET", "/v1/runs/{run_id}/nodes/{node}"),
    ("GET", "/v1/runs/{run_id}/nodes/{node}/outputs/{port}"),
    ("GET", "/v1/runs/{run_id}/nodes/{node}/outputs/{port}/value"),
    ("GET", "/v1/runs/{run_id}/nodes/{node}/inputs/{port}/value"),
    ("POST", "/v1/runs/{run_id}/nodes/{node}/rerun"),
    ("POST", "/v1/runs/{run_id}/cancel"),
    ("GET", "/v1/runs/{run_id}/events"),
    ("GET", "/v1/plugins"),
    ("POST", "/v1/plugins"),
    ("DELETE", "/v1/plugins/{name}/{version}"),
    ("POST", "/v1/keys"),
    ("GET", "/v1/keys"),
    ("DELETE", "/v1/keys/{key_id}"),
    ("POST", "/v1/keys/{key_id}/rotate"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/export"),
    ("POST", "/v1/import"),
    ("POST", "/v1/secrets"),
    ("GET", "/v1/secrets"),
    ("GET", "/v1/secrets/{name}"),
    ("PUT", "/v1/secrets/{name}"),
    ("DELETE", "/v1/secrets/{name}"),
    ("POST", "/v1/models"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{name}"),
    ("DELETE", "/v1/models/{name}"),
    ("GET", "/v1/runs/{run_id}/models"),
    ("GET", "/v2/models/{name}"),
    ("GET", "/v2/models/{name}/ready"),
    ("POST", "/v2/models/{name}/infer"),
    ("GET", "/metrics"),
    # Users of a tenant and workflow shares (issue 18, authorization).
    ("POST", "/v1/users"),
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{user}"),
    ("PUT", "/v1/users/{user}/role"),
    ("POST", "/v1/users/{user}/disable"),
    ("POST", "/v1/users/{user}/enable"),
    ("GET", "/v1/workflows/{workflow_id}/shares"),
    ("PUT", "/v1/workflows/{workflow_id}/shares"),
    # Analytics, reports and insights (issue 20).
    ("GET", "/v1/analytics/summary"),
    ("GET", "/v1/analytics/anomalies"),
    ("GET", "/v1/analytics/workflows/{workflow_id}"),
    ("GET", "/v1/analytics/workflows/{workflow_id}/report"),
    ("GET", "/v1/analytics/workflows/{workflow_id}/insights"),
    ("POST", "/v1/workflows/{workflow_id}/optimize"),
    # Outbound webhooks (issue 19).
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{webhook_id}"),
    ("PATCH", "/v1/webhooks/{webhook_id}"),
    ("DELETE", "/v1/webhooks/{webhook_id}"),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"),
    ("POST", "/v1/webhooks/{webhook_id}/test"),
}


def _document_routes(api: Api) -> set[tuple[str, str]]:
    with httpx.Client(base_url=api.url) as c:
        document = c.get("/openapi.json").json()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture(scope="module")
def bad_credentials(api: Api) -> dict[str, dict[str, str]]:
    expired = api.key(
        ALL_USER_SCOPES, username="expired", expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    revoked = api.key(ALL_USER_SCOPES, username="revoked")
    key_id = next(k.id for k in api.store.api_keys.list() if revoked.startswith(f"rw_{k.prefix}_"))
    api.store.api_keys.revoke(key_id)
    return {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        "empty bearer": {"Authorization": "Bearer"},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "unknown": {"Authorization": "Bearer rw_0123456789ab_" + "A" * 43},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }


def test_document_offers_exactly_the_designed_routes(api: Api) -> None:
    assert _document_routes(api) - OPEN_ROUTES == DESIGNED_ROUTES


def test_every_route_refuses_bad_credentials_and_missing_scopes(
    api: Api, bad_credentials: dict[str, dict[str, str]]
) -> None:
    routes = _document_routes(api) - OPEN_ROUTES
    no_scopes = api.key([], username="scopeless")
    tested: set[tuple[str, str]] = set()
    with httpx.Client(base_url=api.url, timeout=10) as c:
        for method, path in sorted(routes):
            url = _concrete(path)
            for label, headers in bad_credentials.items():
                r = c.request(method, url, headers=headers)
                assert r.status_code == 401, f"{method} {path} with {label} credentials: {r.status_code}"
                assert r.headers["content-type"].startswith("application/problem+json")
                assert "WWW-Authenticate" in r.headers
            r = c.request(method, url, headers={"Authorization": f"Bearer {no_scopes}"})
            assert r.status_code == 403, f"{method} {path} without scope: {r.status_code} {r.text}"
            tested.add((method, path))
    assert tested == routes


def test_admin_routes_refuse_every_other_scope(api: Api) -> None:
    key = api.key(ALL_USER_SCOPES, username="almost-admin")
    with api.client(key) as c:
        assert c.get("/v1/audit").status_code == 403
        assert c.get("/v1/audit/verify").status_code == 403
        assert c.get("/metrics").status_code == 403
        assert c.get("/v1/workflows").status_code == 200


def test_scopes_are_checked_per_route(api: Api) -> None:
    reader = api.key(["workflows:read"], username="reader")
    with api.client(reader) as c:
        assert c.get("/v1/workflows").status_code == 200
        assert c.post("/v1/workflows", json={"workflow": add_doc()}).status_code == 403
        assert c.get("/v1/runs").status_code == 403


def test_open_routes_need_no_credentials(api: Api) -> None:
    with httpx.Client(base_url=api.url) as c:
        assert c.get("/v1/health").json()["status"] == "ok"
        assert c.get("/v1/ready").status_code in (200, 503)
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs").status_code == 200


def test_websocket_refuses_bad_credentials(api: Api, bad_credentials: dict[str, dict[str, str]]) -> None:
    ws_url = api.url.replace("http://", "ws://") + "/v1/runs/x1/events"
    for label, headers in bad_credentials.items():
        with (
            ws_client.connect(ws_url, additional_headers=headers) as ws,
            pytest.raises(ConnectionClosed) as info,
        ):
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401, label


@pytest.fixture(scope="module")
def two_tenants(api: Api) -> Iterator[tuple[str, str, str, str]]:
    """(alice's key, bob's key, alice's workflow id, alice's run id)."""
    alice = api.key(ALL_USER_SCOPES, username="tenant-alice")
    bob = api.key(ALL_USER_SCOPES, username="tenant-bob")
    with api.client(alice) as c:
        wf = c.post("/v1/workflows", json={"workflow": add_doc("alice-wf")}).json()["workflow_id"]
        run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 5, "b": 6}}).json()["id"]
    yield alice, bob, wf, run


def test_other_owners_resources_are_404(api: Api, two_tenants: tuple[str, str, str, str]) -> None:
    _alice, bob, wf, run = two_tenants
    with api.client(bob) as c:
        for method, url in [
            ("GET", f"/v1/workflows/{wf}"),
            ("DELETE", f"/v1/workflows/{wf}"),
            ("GET", f"/v1/workflows/{wf}/versions"),
            ("GET", f"/v1/workflows/{wf}/versions/1"),
            ("GET", f"/v1/runs/{run}"),
            ("GET", f"/v1/runs/{run}/outputs"),
            ("GET", f"/v1/runs/{run}/events"),
            ("POST", f"/v1/runs/{run}/cancel"),
        ]:
            assert c.request(method, url).status_code == 404, f"{method} {url}"
        put = c.put(f"/v1/workflows/{wf}", json={"workflow": add_doc()}, headers={"If-Match": '"1"'})
        assert put.status_code == 404
        assert c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 1, "b": 1}}).status_code == 404
        assert wf not in {w["id"] for w in c.get("/v1/workflows").json()["items"]}
        assert run not in {r["id"] for r in c.get("/v1/runs").json()["items"]}


def test_admin_sees_every_owner(api: Api, two_tenants: tuple[str, str, str, str]) -> None:
    _alice, _bob, wf, run = two_tenants
    with api.client() as c:
        assert c.get(f"/v1/workflows/{wf}").status_code == 200
        assert c.get(f"/v1/runs/{run}").status_code == 200
        assert wf in {w["id"] for w in c.get("/v1/workflows", params={"limit": 500}).json()["items"]}


def test_rate_limit_answers_429_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    options = ServeOptions(executor="local", rate_per_s=0.5, burst=3, print_admin_key=False)
    gen = start_api(tmp_path_factory.mktemp("limited"), options)
    limited = next(gen)
    try:
        other = limited.key(["workflows:read"], username="other")
        with limited.client() as c:
            codes = [c.get("/v1/workflows").status_code for _ in range(4)]
            refused = c.get("/v1/workflows")
            health = [c.get("/v1/health").status_code for _ in range(5)]
        with limited.client(other) as c:
            assert c.get("/v1/workflows").status_code == 200  # buckets are per key
    finally:
        gen.close()
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert health == [200] * 5


def test_audit_records_mutations_and_failed_authentication(api: Api) -> None:
    key = api.key(ALL_USER_SCOPES, username="audited")
    with api.client(key) as c:
        created = c.post(
            "/v1/workflows", json={"workflow": add_doc("audited-wf")}, headers={"X-Request-Id": "rq-1"}
        )
    # From an address of its own: failures are audited one row per address and window (then counted), and this
    # module's other tests already failed from 127.0.0.1.
    with httpx.Client(base_url=api.url, transport=httpx.HTTPTransport(local_address="127.0.0.9")) as c:
        c.delete("/v1/workflows/x", headers={"Authorization": "Bearer rw_nope_nope", "X-Request-Id": "rq-2"})
    with api.client() as c:
        entries = c.get("/v1/audit", params={"limit": 1000}).json()["items"]
    wf_id = created.json()["workflow_id"]
    made = [e for e in entries if e["details"].get("request_id") == "rq-1"]
    assert made and made[0]["actor"].startswith("audited") and made[0]["outcome"] == "ok"
    assert made[0]["resource_id"] == wf_id and made[0]["action"] == "POST /v1/workflows"
    failed = [e for e in entries if e["details"].get("request_id") == "rq-2"]
    assert failed and failed[0]["outcome"] == "denied" and failed[0]["action"] == "auth.failed"
    assert failed[0]["details"]["client"] == "127.0.0.9" and "not valid" in failed[0]["details"]["reason"]
