"""`/v1/secrets` (issue 18): values go in sealed and never come out; names and metadata only; per owner."""

from __future__ import annotations

import time

from cluster.settings import Settings
from engine.secrets import SecretsService, key_provider
from tests.serve.api.conftest import Api

VALUE = "pl4nted-secret-Vx9q"


def _dump_everything(api: Api) -> str:
    """Every row of every table of the store, as text (what someone with the database would see)."""
    from tests.engine.store.sql_support import dump_tables

    return dump_tables(api.store)


def test_create_list_show_set_delete(api: Api) -> None:
    key = api.key(["secrets:read", "secrets:write"], username="sally")
    with api.client(key) as c:
        created = c.post("/v1/secrets", json={"name": "warehouse-pw", "value": VALUE, "description": "dw"})
        assert created.status_code == 201, created.text
        body = created.json()
        sally = api.store.users.get_by_username("sally").id
        assert (body["name"], body["version"], body["owner"], body["description"]) == (
            "warehouse-pw",
            1,
            sally,
            "dw",
        )
        assert VALUE not in created.text
        again = c.post("/v1/secrets", json={"name": "warehouse-pw", "value": "x"})
        assert again.status_code == 409 and "PUT /v1/secrets/warehouse-pw" in again.json()["detail"]
        updated = c.put("/v1/secrets/warehouse-pw", json={"value": VALUE + "2"})
        assert updated.status_code == 200 and updated.json()["version"] == 2
        assert updated.json()["description"] == "dw"
        listed = c.get("/v1/secrets")
        assert [s["name"] for s in listed.json()["items"]] == ["warehouse-pw"]
        shown = c.get("/v1/secrets/warehouse-pw")
        assert shown.status_code == 200 and VALUE not in listed.text + shown.text
        assert c.delete("/v1/secrets/warehouse-pw").status_code == 204
        missing = c.get("/v1/secrets/warehouse-pw")
        assert missing.status_code == 404 and "POST /v1/secrets" in missing.json()["detail"]
    # Sealed at rest: the value is nowhere in the database, though the service can still open what it sealed.
    service = SecretsService(api.store, key_provider(Settings(home=api.home)))
    service.set(sally, "kept", VALUE)
    assert VALUE not in _dump_everything(api)
    assert service.reveal(sally, "kept") == VALUE


def test_owners_do_not_see_each_other(api: Api) -> None:
    ann = api.key(["secrets:read", "secrets:write"], username="ann")
    ben = api.key(["secrets:read", "secrets:write"], username="ben")
    with api.client(ann) as a, api.client(ben) as b:
        assert a.post("/v1/secrets", json={"name": "token", "value": "ann-value"}).status_code == 201
        assert b.get("/v1/secrets/token").status_code == 404
        assert b.get("/v1/secrets").json()["items"] == []
        ann_id = api.store.users.get_by_username("ann").id
        assert b.get("/v1/secrets", params={"owner": ann_id}).status_code == 403
        assert b.delete("/v1/secrets/token").status_code == 404
    with api.client() as admin:
        listed = admin.get("/v1/secrets", params={"owner": ann_id})
        assert [s["name"] for s in listed.json()["items"]] == ["token"]


def test_bad_input_is_refused_without_echoing_the_value(api: Api) -> None:
    key = api.key(["secrets:write"], username="carl")
    with api.client(key) as c:
        bad_name = c.post("/v1/secrets", json={"name": "no spaces", "value": VALUE})
        assert bad_name.status_code == 422 and "name" in bad_name.json()["detail"]
        assert VALUE not in bad_name.text
        too_big = c.put("/v1/secrets/big", json={"value": "x" * 70_000})
        assert too_big.status_code == 422 and "value" in too_big.json()["detail"]
        extra = c.post("/v1/secrets", json={"name": "ok", "value": VALUE, "colour": "red"})
        assert extra.status_code == 422 and VALUE not in extra.text
    reader = api.key(["secrets:read"], username="carl")
    with api.client(reader) as c:
        assert c.post("/v1/secrets", json={"name": "ok", "value": VALUE}).status_code == 403


def test_writes_are_audited_without_the_value(api: Api) -> None:
    key = api.key(["secrets:write"], username="dora")
    with api.client(key) as c:
        assert c.put("/v1/secrets/audited", json={"value": VALUE}).status_code == 200
    target = f"{api.store.users.get_by_username('dora').id}/audited"
    deadline = time.monotonic() + 10  # the audit entry is written right after the response is sent
    while True:
        entries = [e for e in api.store.audit.list(limit=500) if e.resource_type == "secrets"]
        if any(e.action == "PUT /v1/secrets/{name}" and e.resource_id == target for e in entries):
            break
        assert time.monotonic() < deadline, f"no audit entry for {target}: {entries}"
        time.sleep(0.05)
    assert VALUE not in repr(entries)


def test_the_master_key_file_is_private_and_a_broken_one_is_a_503(api: Api) -> None:
    path = api.home / "master.key"
    with api.client() as c:
        assert c.put("/v1/secrets/any", json={"value": "v"}).status_code == 200
    assert path.stat().st_mode & 0o777 == 0o600
    kept = path.read_text()
    path.write_text("garbage\n")
    try:
        with api.client() as c:
            response = c.put("/v1/secrets/any", json={"value": "v2"})
        assert response.status_code == 503
        assert "master key is unavailable" in response.json()["detail"] and "garbage" not in response.text
    finally:
        path.write_text(kept)
