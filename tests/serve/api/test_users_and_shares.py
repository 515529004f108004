"""The users API (create, list, change role, disable, the last-owner guard, audit) and sharing workflows, end to
end over HTTP on a served app (in-process executor)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve.auth import SCOPES
from tests.serve.api.conftest import Api, add_doc, wait_for_status

ALL = [s for s in SCOPES if s != "admin"]


@pytest.fixture(scope="module")
def acme(api: Api) -> Iterator[dict[str, str]]:
    """Keys of acme's owner and admin (acme is a tenant of its own)."""
    tenant = api.store.tenants.create("acme")
    keys = {}
    for role in ("owner", "admin"):
        user = api.store.users.create(f"acme-{role}", tenant_id=tenant.id, role=role)
        keys[role] = api.store.api_keys.create(user.id, scopes=ALL)[1]
    yield keys


def test_create_list_change_role_and_disable_users(api: Api, acme: dict[str, str]) -> None:
    with api.client(acme["admin"]) as c:
        created = c.post("/v1/users", json={"username": "dana", "role": "runner", "key": True})
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["role"], body["tenant_id"]) == ("runner", api.store.tenants.get_by_name("acme").id)
        dana_key = body["key"]
        assert "dana" in {u["username"] for u in c.get("/v1/users").json()["items"]}
        assert "alice" not in {u["username"] for u in c.get("/v1/users").json()["items"]}  # another tenant
        # An admin gives and takes only roles up to admin.
        refused = c.post("/v1/users", json={"username": "erin", "role": "owner"})
        assert refused.status_code == 403 and "'admin'" in refused.json()["detail"]
        changed = c.put("/v1/users/dana/role", json={"role": "editor"})
        assert changed.status_code == 200 and changed.json()["previous_role"] == "runner"
        assert c.put("/v1/users/acme-owner/role", json={"role": "viewer"}).status_code == 403
    with api.client(dana_key) as c:
        assert c.post("/v1/workflows", json={"workflow": add_doc("dana-wf")}).status_code == 201  # editor now
        assert c.get("/v1/users").status_code == 403  # no users:admin
    with api.client(acme["admin"]) as c:
        assert c.post("/v1/users/dana/disable").json()["disabled"] is True
    # The cache of verified keys was told: the key stops at once on this server.
    with api.client(dana_key) as c:
        assert c.get("/v1/workflows").status_code == 401
    with api.client() as c:
        audit = c.get("/v1/audit", params={"action": "users.set_role"}).json()["items"]
    assert any(e["details"]["from"] == "runner" and e["details"]["to"] == "editor" for e in audit)


def test_a_tenant_keeps_its_last_owner(api: Api, acme: dict[str, str]) -> None:
    with api.client(acme["owner"]) as c:
        demoted = c.put("/v1/users/acme-owner/role", json={"role": "admin"})
        assert demoted.status_code == 409 and "last enabled owner" in demoted.json()["detail"]
        assert c.post("/v1/users/acme-owner/disable").status_code == 409
    with api.client(acme["admin"]) as c:
        assert c.post("/v1/users/acme-owner/disable").status_code == 403  # an admin cannot touch an owner


def test_sharing_a_workflow_with_a_user_and_the_tenant(api: Api) -> None:
    tenant = api.store.tenants.create("shareco")
    keys = {}
    for name, role in (("sam", "member"), ("rita", "runner"), ("vic", "viewer"), ("ed", "editor")):
        user = api.store.users.create(name, tenant_id=tenant.id, role=role)
        keys[name] = api.store.api_keys.create(user.id, scopes=ALL)[1]
    outsider = api.key(ALL, username="outsider")  # the default tenant
    with api.client(keys["sam"]) as c:
        wf = c.post("/v1/workflows", json={"workflow": add_doc("shared")}).json()["workflow_id"]
        run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 1, "b": 2}}).json()["id"]
        wait_for_status(c, run, "succeeded")
        assert (
            c.put(
                f"/v1/workflows/{wf}/shares", json={"items": [{"user": "outsider", "role": "viewer"}]}
            ).status_code
            == 400
        )
        shared = c.put(
            f"/v1/workflows/{wf}/shares",
            json={
                "items": [
                    {"tenant": True, "role": "viewer"},
                    {"user": "rita", "role": "runner"},
                    {"user": "ed", "role": "viewer"},
                ]
            },
        )
        assert shared.status_code == 200, shared.text
        assert {(s["user"], s["tenant"], s["role"]) for s in shared.json()["items"]} == {
            (None, tenant.id, "viewer"),
            ("rita", None, "runner"),
            ("ed", None, "viewer"),
        }
    with api.client(keys["vic"]) as c:  # the whole tenant sees it and its runs
        assert wf in {w["id"] for w in c.get("/v1/workflows").json()["items"]}
        assert run in {r["id"] for r in c.get("/v1/runs").json()["items"]}
        assert c.get(f"/v1/runs/{run}/outputs").json()["outputs"] == {"total": 3}
    with api.client(keys["rita"]) as c:  # a runner share lets rita start runs, not edit
        started = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 2, "b": 2}})
        assert started.status_code == 202
        put = c.put(f"/v1/workflows/{wf}", json={"workflow": add_doc()}, headers={"If-Match": '"1"'})
        assert put.status_code == 403 and "runner" in put.json()["detail"]
    with api.client(keys["sam"]) as c:  # the owner sees rita's run of the workflow
        assert started.json()["id"] in {r["id"] for r in c.get("/v1/runs").json()["items"]}
    with api.client(keys["ed"]) as c:  # an editor shared as viewer cannot write it
        assert (
            c.put(
                f"/v1/workflows/{wf}", json={"workflow": add_doc()}, headers={"If-Match": '"1"'}
            ).status_code
            == 403
        )
        assert c.put(f"/v1/workflows/{wf}/shares", json={"items": []}).status_code == 403
    with api.client(outsider) as c:  # another tenant: as if it did not exist
        assert c.get(f"/v1/workflows/{wf}").status_code == 404
        assert c.get(f"/v1/runs/{run}").status_code == 404
