"""`GET /v1/audit/verify`: an admin checks the audit log's hash chain through the API."""

from __future__ import annotations

from tests.engine.store import sql_support
from tests.serve.api.conftest import ALL_USER_SCOPES, Api, add_doc


def test_verify_reports_an_intact_chain_then_the_edited_entry(api: Api) -> None:
    user = api.key(ALL_USER_SCOPES, username="chain-user")
    with api.client(user) as c:
        assert c.post("/v1/workflows", json={"workflow": add_doc("chained")}).status_code == 201
        assert c.get("/v1/audit/verify").status_code == 403
    with api.client() as c:
        intact = c.get("/v1/audit/verify")
        assert intact.status_code == 200, intact.text
        body = intact.json()
        assert body["ok"] is True and body["checked"] >= 1 and len(body["head_hash"]) == 64

        entries = c.get("/v1/audit", params={"limit": 1000}).json()["items"]
        victim = next(e for e in entries if e["actor"].startswith("chain-user"))
        sql_support.edit_audit_entry(api.store, victim["id"], outcome="denied")

        broken = c.get("/v1/audit/verify").json()
    assert (broken["ok"], broken["broken_id"], broken["problem"]) == (False, victim["id"], "hash")
