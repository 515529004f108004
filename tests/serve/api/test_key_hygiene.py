"""Issue 18, key hygiene: expiry, rotation with a grace period, a throttled last-used time, and revocation that
takes effect on every server sharing the store within 1 s."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.store.api_keys import LAST_USED_RESOLUTION
from serve.cli import build_app
from serve.config import ServeOptions
from tests.engine.store.sql_support import postgres_database
from tests.serve.api.conftest import ALL_USER_SCOPES, Api, start_api


def _options() -> ServeOptions:
    return ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        auth_failures_per_s=10_000,
        auth_failure_burst=10_000,
        print_admin_key=False,
    )


def _key_id(api: Api, secret: str) -> str:
    return next(
        k.id for k in api.store.api_keys.list(include_revoked=True) if secret.startswith(f"rw_{k.prefix}_")
    )


def _status(api: Api, secret: str) -> int:
    with api.client(secret) as c:
        return c.get("/v1/workflows").status_code


def _wait_refused(api: Api, secret: str, within_s: float) -> float:
    """Seconds until `secret` is refused (401), polling; fails if it still works after `within_s`."""
    started = time.monotonic()
    while True:
        status = _status(api, secret)
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed <= within_s, f"the key still works {elapsed:.2f} s later"
        time.sleep(0.05)


# --- expiry ---------------------------------------------------------------------------------------------------


def test_an_expired_key_is_refused_with_a_clear_problem(api: Api) -> None:
    expired = api.key(
        ["workflows:read"], username="late", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    with api.client(expired) as c:
        r = c.get("/v1/workflows")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "expired at" in detail and "POST /v1/keys" in detail and "rayweave keys create" in detail
    assert expired not in r.text


def test_a_key_created_with_expires_in_works_until_then(api: Api) -> None:
    with api.client() as admin:
        made = admin.post("/v1/keys", json={"scopes": ["workflows:read"], "expires_in_s": 1})
        assert made.status_code == 201, made.text
        body = made.json()
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(0) < expires_at - datetime.fromisoformat(body["created_at"]) <= timedelta(seconds=2)
    assert _status(api, body["key"]) == 200
    waited = _wait_refused(api, body["key"], within_s=3)
    assert waited > 0
    with api.client(body["key"]) as c:
        assert "expired" in c.get("/v1/workflows").json()["detail"]


def test_expiry_requests_are_checked(api: Api) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with api.client() as admin:
        both = admin.post("/v1/keys", json={"scopes": [], "expires_at": future, "expires_in_s": 60})
        assert both.status_code == 400 and "not both" in both.json()["detail"]
        gone = admin.post("/v1/keys", json={"scopes": [], "expires_at": past})
        assert gone.status_code == 400 and "in the past" in gone.json()["detail"]
        assert admin.post("/v1/keys", json={"scopes": [], "expires_in_s": 0}).status_code == 422
        ok = admin.post("/v1/keys", json={"scopes": [], "expires_at": future})
        assert ok.status_code == 201 and ok.json()["expires_at"] is not None


# --- rotation -------------------------------------------------------------------------------------------------


def test_rotation_without_grace_revokes_the_old_key_at_once(api: Api) -> None:
    old = api.key(["workflows:read", "runs:read"], username="rotor")
    old_id = _key_id(api, old)
    with api.client() as admin:
        r = admin.post(f"/v1/keys/{old_id}/rotate")
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["id"] != old_id and body["key"].startswith("rw_") and body["key"] != old
    assert (
        body["scopes"] == ["runs:read", "workflows:read"]
        and body["user_id"] == api.store.api_keys.get(old_id).user_id
    )
    assert body["rotated"]["id"] == old_id and body["rotated"]["revoked_at"] is not None
    assert _status(api, body["key"]) == 200
    with api.client(old) as c:
        refused = c.get("/v1/workflows")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    # Audited, naming both keys.
    entry = api.store.audit.list(action="keys.rotate", resource_id=old_id)[0]
    assert entry.details["new_key_id"] == body["id"] and entry.details["grace_s"] == 0
    # A rotated key cannot be rotated again: its replacement can.
    with api.client() as admin:
        again = admin.post(f"/v1/keys/{old_id}/rotate")
        assert again.status_code == 409 and "rotate its replacement" in again.json()["detail"]
        assert admin.post(f"/v1/keys/{body['id']}/rotate").status_code == 200


def test_rotation_grace_keeps_the_old_key_working_until_it_ends(api: Api) -> None:
    old = api.key(["workflows:read"], username="graceful")
    old_id = _key_id(api, old)
    with api.client() as admin:
        body = admin.post(f"/v1/keys/{old_id}/rotate", json={"grace_s": 1.5}).json()
        listed = {k["id"]: k for k in admin.get("/v1/keys").json()["items"]}
    assert old_id in listed and listed[old_id]["revoked_at"] is not None  # listed while it still works
    rotated_at = time.monotonic()
    assert _status(api, old) == 200 and _status(api, body["key"]) == 200
    _wait_refused(api, old, within_s=3)
    assert time.monotonic() - rotated_at >= 1.2  # honoured the grace (less the request's own latency)
    assert _status(api, body["key"]) == 200


def test_rotation_keeps_the_lifetime_and_respects_tenancy(api: Api) -> None:
    alice = api.key(ALL_USER_SCOPES, username="alice-rot")
    bob = api.key(["keys:admin"], username="bob-rot")
    with api.client(alice) as c:
        mine = c.post("/v1/keys", json={"scopes": ["runs:read"], "expires_in_s": 3600}).json()
        rotated = c.post(f"/v1/keys/{mine['id']}/rotate", json={"grace_s": 60})
        assert rotated.status_code == 200
        new = rotated.json()
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert abs(lifetime - timedelta(hours=1)) < timedelta(seconds=5)
    with api.client(bob) as c:
        assert c.post(f"/v1/keys/{new['id']}/rotate").status_code == 404  # another owner's key: not visible
        assert c.post(f"/v1/keys/{new['id']}/rotate", json={"grace_s": -1}).status_code == 422


def test_the_cli_rotates_and_lists_keys(api: Api) -> None:
    runner = CliRunner()
    url = api.store.connect_url
    made = runner.invoke(
        build_app(),
        [
            "keys",
            "create",
            "--scope",
            "workflows:read",
            "--user",
            "cli-rot",
            "--expires-in",
            "30d",
            "--url",
            url,
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    with api.client(created["key"]) as c:
        assert c.get("/v1/workflows").status_code == 200
    listed = json.loads(
        runner.invoke(build_app(), ["keys", "list", "--user", "cli-rot", "--url", url, "--json"]).stdout
    )
    assert [k["id"] for k in listed["items"]] == [created["id"]]
    assert listed["items"][0]["last_used_at"] is not None
    text = runner.invoke(build_app(), ["keys", "list", "--url", url])
    assert text.exit_code == 0 and created["prefix"] in text.stdout and "LAST USED" in text.stdout

    rotated = runner.invoke(build_app(), ["keys", "rotate", created["id"], "--url", url, "--json"])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["rotated"]["id"] == created["id"] and new["key"] != created["key"]
    with api.client(new["key"]) as c:
        assert c.get("/v1/workflows").status_code == 200
    # Rotated in the store, behind the server's back: it stops within the verified-key cache's 0.5 s.
    _wait_refused(api, created["key"], within_s=1.0)
    entry = api.store.audit.list(action="keys.rotate", resource_id=created["id"])[0]
    assert entry.details["via"] == "rayweave keys rotate" and "(local" in entry.actor

    again = runner.invoke(build_app(), ["keys", "rotate", created["id"], "--url", url])
    assert again.exit_code == 1 and "rotate its replacement" in again.output
    bad = runner.invoke(build_app(), ["keys", "rotate", new["id"], "--grace", "soon", "--url", url])
    assert bad.exit_code == 2 and "--grace" in bad.output


# --- last used ------------------------------------------------------------------------------------------------


def test_last_used_is_set_on_use_and_not_rewritten_within_the_window(api: Api) -> None:
    secret = api.key(["workflows:read"], username="user-of-keys")
    key_id = _key_id(api, secret)
    assert api.store.api_keys.get(key_id).last_used_at is None
    assert _status(api, secret) == 200
    first = api.store.api_keys.get(key_id).last_used_at
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=10)
    for _ in range(3):
        assert _status(api, secret) == 200
    assert api.store.api_keys.get(key_id).last_used_at == first  # throttled: no write per request
    api.store.api_keys.verify(secret)  # the store itself, past the server's verified-key cache
    assert api.store.api_keys.get(key_id).last_used_at == first
    with api.client() as admin:
        shown = next(k for k in admin.get("/v1/keys").json()["items"] if k["id"] == key_id)
    assert datetime.fromisoformat(shown["last_used_at"]) == first
    # Past the window, the next use writes it again.
    later = first + LAST_USED_RESOLUTION + timedelta(seconds=1)
    api.store.api_keys.verify(secret, now=later)
    assert api.store.api_keys.get(key_id).last_used_at == later


# --- revocation across servers --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, Api]]:
    """Two API servers (two processes' worth of app, store and caches) on one store."""
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if request.param == "postgresql" else ""
        home = tmp_path / "home"
        first = stack.enter_context(_served(home, url))
        second = stack.enter_context(_served(home, url))
        yield first, second


@contextmanager
def _served(home: Path, url: str) -> Iterator[Api]:
    served = start_api(home, _options(), database_url=url)
    try:
        yield next(served)
    finally:
        served.close()


def test_a_revocation_takes_effect_on_another_server_within_one_second(two_servers: tuple[Api, Api]) -> None:
    first, second = two_servers
    assert first.url != second.url
    secret = first.key(["workflows:read"], username="revokee")
    key_id = _key_id(first, secret)
    # Both servers have seen (and would have cached) the key.
    for _ in range(3):
        assert _status(first, secret) == 200 and _status(second, secret) == 200
    with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {first.admin_key}"}) as admin:
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 204
    waited = _wait_refused(second, secret, within_s=1.5)
    assert waited <= 1.0
    assert _status(first, secret) == 401
