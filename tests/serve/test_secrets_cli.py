"""`rayweave secrets` (issue 18): values from files, env or stdin only, metadata out, master key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.secrets import SecretsService, key_provider
from engine.store import open_store
from serve.cli import build_app
from tests.engine.store.sql_support import dump_tables

VALUE = "cli-planted-Q7w"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RAYWEAVE_HOME", str(home))
    monkeypatch.delenv("RAYWEAVE_DATABASE_URL", raising=False)
    with open_store(Settings(home=home).resolved_database_url) as store:
        store.users.create("alice")
    return home


def _run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), input=input)
    return result.exit_code, result.output


def test_set_list_show_delete(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value_file = tmp_path / "value.txt"
    value_file.write_text(VALUE + "\n")
    code, out = _run("secrets", "set", "api-token", "--user", "alice", "--from-file", str(value_file))
    assert code == 0 and out.strip() == "set secret api-token of alice (version 1)"
    monkeypatch.setenv("TOKEN_V2", VALUE + "-2")
    code, out = _run(
        "secrets", "set", "api-token", "--user", "alice", "--from-env", "TOKEN_V2", "--description", "ci"
    )
    assert code == 0 and "(version 2)" in out
    code, out = _run("secrets", "set", "piped", "--user", "alice", input=VALUE + "-3\n")
    assert code == 0, out
    code, out = _run("secrets", "list", "--json")
    listed = json.loads(out)
    assert sorted(s["name"] for s in listed) == ["api-token", "piped"] and VALUE not in out
    code, out = _run("secrets", "show", "api-token", "--user", "alice", "--json")
    assert code == 0 and json.loads(out)["description"] == "ci" and VALUE not in out
    settings = Settings(home=home)
    with open_store(settings.resolved_database_url) as store:
        alice = store.users.get_by_username("alice").id
        assert SecretsService(store, key_provider(settings)).reveal(alice, "api-token") == VALUE + "-2"
        assert SecretsService(store, key_provider(settings)).reveal(alice, "piped") == VALUE + "-3"
        assert VALUE not in dump_tables(store)
        actions = [e.action for e in store.audit.list(limit=50)]
        assert actions.count("secrets.set") == 3
    code, out = _run("secrets", "delete", "piped", "--user", "alice")
    assert code == 0
    code, out = _run("secrets", "show", "piped", "--user", "alice")
    assert code == 1 and "secret 'piped' does not exist" in out


def test_bad_usage_exits_2_without_echoing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _run("secrets", "set", "x", "--user", "nobody", input="v")
    assert code == 2 and "no user 'nobody'" in out
    code, out = _run("secrets", "set", "has space", "--user", "alice", input=VALUE)
    assert code == 2 and "is not allowed" in out and VALUE not in out
    code, out = _run("secrets", "set", "x", "--user", "alice", "--from-env", "NOT_SET_ANYWHERE")
    assert code == 2 and "NOT_SET_ANYWHERE is not set" in out
    # The name is checked first: with an empty value (or none given) the bad name is what is named.
    code, out = _run("secrets", "set", "bad name", "--user", "alice", input="")
    assert code == 2 and "'bad name' is not allowed" in out and "empty" not in out


def test_rotate_key_re_encrypts_everything_and_drops_the_old_key(home: Path) -> None:
    for n in range(3):
        assert _run("secrets", "set", f"s{n}", "--user", "alice", input=f"value-{n}")[0] == 0
    settings = Settings(home=home)
    old_id = key_provider(settings).current_key_id
    code, out = _run("secrets", "rotate-key", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["resealed"] == 3 and report["key_id"] != old_id
    keyring = key_provider(settings)
    assert keyring.current_key_id == report["key_id"]
    assert len((home / "master.key").read_text().split()) == 1
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    with open_store(settings.resolved_database_url) as store:
        alice = store.users.get_by_username("alice").id
        assert {row.key_id for row in store.secrets.list()} == {report["key_id"]}
        assert SecretsService(store, keyring).reveal(alice, "s2") == "value-2"


def test_rotate_key_with_the_keyring_in_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from engine.secrets import Keyring
    from engine.secrets.keys import new_master_key

    old, new = new_master_key(), new_master_key()
    monkeypatch.setenv("RAYWEAVE_SECRETS_MASTER_KEY", base64.b64encode(old).decode())
    assert _run("secrets", "set", "s", "--user", "alice", input="env-value")[0] == 0
    both = ",".join(base64.b64encode(k).decode() for k in (new, old))
    monkeypatch.setenv("RAYWEAVE_SECRETS_MASTER_KEY", both)
    code, out = _run("secrets", "rotate-key")
    assert code == 0 and "re-encrypted 1 secret(s)" in out and "may now be removed" in out
    assert not (home / "master.key").exists()
    only_new = Keyring([new], "test")
    with open_store(Settings(home=home).resolved_database_url) as store:
        alice = store.users.get_by_username("alice").id
        assert SecretsService(store, only_new).reveal(alice, "s") == "env-value"
