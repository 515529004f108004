"""Issue 16, critical 3: the API refuses to revoke the last admin key; the operator can always mint one.

Also the first-start admin key file: private from its first byte, and not needed by the server afterwards.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from serve.cli import build_app
from serve.config import ServeOptions
from tests.serve.api.conftest import Api, start_api


def _options() -> ServeOptions:
    return ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A fresh installation per test: these tests revoke its admin keys."""
    yield from start_api(tmp_path / "home", _options())


def test_the_last_admin_key_cannot_be_revoked_over_the_api(api: Api) -> None:
    with api.client() as admin:
        first = next(k for k in admin.get("/v1/keys").json()["items"] if "admin" in k["scopes"])
        second = admin.post("/v1/keys", json={"scopes": ["admin"], "name": "spare"}).json()
        assert admin.delete(f"/v1/keys/{second['id']}").status_code == 204
        refused = admin.delete(f"/v1/keys/{first['id']}")
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["status"] == 409 and "last active admin key" in problem["detail"]
        assert "rayweave keys create --admin" in problem["detail"]
        # The key still works: the installation keeps its administrator.
        assert admin.get("/v1/keys").status_code == 200


def test_a_narrower_key_does_not_count_as_an_admin(api: Api) -> None:
    helper = api.key(["keys:admin", "runs:write"], username="helper")
    with api.client() as admin, api.client(helper) as narrow:
        key_id = next(k["id"] for k in admin.get("/v1/keys").json()["items"] if "admin" in k["scopes"])
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 409
        assert narrow.get("/v1/keys").status_code == 200


def test_an_operator_mints_an_admin_key_with_the_cli_and_it_is_audited(api: Api) -> None:
    # The only admin key was lost (its file deleted, nobody kept a copy): the operator, who can reach the store,
    # makes a new one without the server.
    (api.home / "admin.key").unlink()
    url = api.store.connect_url
    result = CliRunner().invoke(build_app(), ["keys", "create", "--admin", "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["user"] == "admin" and made["scopes"] == ["admin"] and made["key"].startswith("rw_")
    with api.client(made["key"]) as admin:
        listed = admin.get("/v1/keys")
        assert listed.status_code == 200
        old = next(k["id"] for k in listed.json()["items"] if k["id"] != made["id"])
        assert admin.delete(f"/v1/keys/{old}").status_code == 204  # two admin keys: one may go
    entries = api.store.audit.list(action="keys.create")
    assert [e.resource_id for e in entries] == [made["id"]]
    assert entries[0].details["via"] == "rayweave keys create" and "(local" in entries[0].actor


def test_the_cli_prints_the_secret_once_in_text_too(api: Api) -> None:
    # The store is found as every command finds it: RAYWEAVE_HOME (here a SQLite file in it).
    result = CliRunner().invoke(
        build_app(),
        ["keys", "create", "--scope", "runs:read", "--user", "bob"],
        env={"RAYWEAVE_HOME": str(api.home), "RAYWEAVE_DATABASE_URL": ""},
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1].strip()
    assert secret.startswith("rw_") and "for user 'bob' with scopes runs:read" in result.stdout
    with api.client(secret) as bob:
        assert bob.get("/v1/runs").status_code == 200
        assert bob.get("/v1/keys").status_code == 403


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --admin or at least one --scope"),
        (["--scope", "root"], "unknown scope"),
        (["--scope", "runs:read"], "--user"),
        (["--scope", "runs:read", "--user", "oidc:someone"], "reserved"),
    ],
)
def test_the_cli_refuses_bad_usage_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(build_app(), ["keys", "create", *args, "--url", url])
    assert result.exit_code == 2 and message in result.output


def test_the_admin_key_file_is_private_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_replace = os.replace

    def watching_replace(src: str, dst: str) -> None:
        # The moment the file appears under its name, it must already be private.
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    previous = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        apis = start_api(tmp_path / "home", _options())
        api = next(apis)
        apis.close()
    finally:
        os.umask(previous)
    key_file = api.home / "admin.key"
    assert modes == [0o600]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in api.home.iterdir() if p.name.startswith(".admin.key")] == []


def test_the_server_does_not_need_the_key_file_after_the_first_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    apis = start_api(home, _options())
    secret = next(apis).admin_key
    apis.close()
    (home / "admin.key").unlink()  # the operator keeps the key elsewhere
    restarted = start_api_without_key_file(home)
    url = next(restarted)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as client:
            assert client.get("/v1/keys").status_code == 200  # only its hash was needed
        assert not (home / "admin.key").exists()  # a restart is no first start: no new key
    finally:
        restarted.close()


def test_a_key_file_made_readable_by_others_is_made_private_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    apis = start_api(home, _options())
    next(apis)
    apis.close()
    (home / "admin.key").chmod(0o644)
    apis = start_api(home, _options())
    next(apis)
    apis.close()
    assert stat.S_IMODE((home / "admin.key").stat().st_mode) == 0o600


def start_api_without_key_file(home: Path) -> Iterator[str]:
    """Serve an existing installation under `home`; yields the URL (no key file is read)."""
    from cluster.settings import Settings
    from engine.store import open_store
    from serve.app import create_app
    from tests.serve.api.server import serving

    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    try:
        with serving(create_app(settings, store=store, options=_options())) as url:
            yield url
    finally:
        store.close()
