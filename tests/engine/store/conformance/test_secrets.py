"""The secrets store over every backend (issue 18): sealed at rest, versions, rotation, tampering refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.secrets import Keyring, MasterKeyError, SecretDecryptionError, SecretNameError, SecretsService
from engine.secrets.keys import key_provider, new_master_key
from engine.store import NotFoundError, Store

VALUE = "s3cr3t-hunter2-value"


def _service(store: Store) -> SecretsService:
    return SecretsService(store, Keyring([new_master_key()], "a test keyring"))


def test_a_secret_is_sealed_at_rest_and_versioned(store: Store) -> None:
    service = _service(store)
    info = service.set("alice", "db-password", VALUE, description="warehouse", actor="alice")
    assert (info.name, info.version, info.description, info.created_by) == (
        "db-password",
        1,
        "warehouse",
        "alice",
    )
    row = store.secrets.get("alice", "db-password")
    # Neither the value nor any base64 form of it is stored.
    assert VALUE not in row.ciphertext and VALUE not in row.wrapped_key
    assert service.reveal("alice", "db-password") == VALUE
    again = service.set("alice", "db-password", VALUE + "-2", actor="bob")
    assert (again.version, again.description, again.updated_by) == (2, "warehouse", "bob")
    assert service.reveal("alice", "db-password") == VALUE + "-2"
    # Same value, same owner: a fresh data key and nonce each time.
    assert store.secrets.get("alice", "db-password").ciphertext != row.ciphertext


def test_owners_are_separate_and_listing_shows_no_values(store: Store) -> None:
    service = _service(store)
    service.set("alice", "token", "a-value")
    service.set("bob", "token", "b-value")
    assert service.reveal("bob", "token") == "b-value"
    assert [(i.owner, i.name) for i in service.list("alice")] == [("alice", "token")]
    assert {(i.owner, i.name) for i in service.list()} == {("alice", "token"), ("bob", "token")}
    assert "a-value" not in repr(service.list()) and "a-value" not in str(
        [i.as_dict() for i in service.list()]
    )
    with pytest.raises(NotFoundError, match="secret 'token' does not exist for 'carol'"):
        service.reveal("carol", "token")
    service.delete("alice", "token")
    with pytest.raises(NotFoundError):
        service.info("alice", "token")


def test_a_sealed_value_moved_to_another_secret_does_not_open(store: Store) -> None:
    service = _service(store)
    service.set("alice", "one", "first")
    service.set("alice", "two", "second")
    one = store.secrets.get("alice", "one")
    two = store.secrets.get("alice", "two")
    # Copy one's sealed form over two's (what an attacker with write access to the table could do).
    assert store.secrets.reseal(
        two.id, version=two.version, ciphertext=one.ciphertext, wrapped_key=one.wrapped_key, key_id=one.key_id
    )
    with pytest.raises(SecretDecryptionError, match="failed authentication"):
        service.reveal("alice", "two")


def test_rotation_reseals_every_secret_under_the_new_key(store: Store) -> None:
    old = Keyring([new_master_key()], "the old keyring")
    service = SecretsService(store, old)
    for n in range(5):
        service.set(f"user{n % 2}", f"s{n}", f"value-{n}")
    before = {(r.owner, r.name): r.ciphertext for r in store.secrets.list()}
    both = old.rotated()
    report = SecretsService(store, both).rotate(both)
    assert (report.key_id, report.resealed, report.unchanged) == (both.current_key_id, 5, 0)
    rows = store.secrets.list()
    assert {r.key_id for r in rows} == {both.current_key_id}
    assert all(before[(r.owner, r.name)] != r.ciphertext for r in rows)
    # Once everything is under the new key, the old one can go; a keyring without the new key cannot read.
    current = both.current_only()
    assert SecretsService(store, current).reveal("user1", "s3") == "value-3"
    with pytest.raises(MasterKeyError, match=f"sealed under master key {both.current_key_id}"):
        SecretsService(store, old).reveal("user1", "s3")
    # Running it again changes nothing.
    assert SecretsService(store, current).rotate(current).unchanged == 5


def test_concurrent_sets_of_one_name_all_land_as_versions(store: Store) -> None:
    service = _service(store)
    errors: list[BaseException] = []

    def put(n: int) -> None:
        try:
            service.set("alice", "shared", f"v{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.secrets.get("alice", "shared").version == 6
    assert service.reveal("alice", "shared") in {f"v{n}" for n in range(6)}


def test_names_are_checked(store: Store) -> None:
    service = _service(store)
    for bad in ("", "1abc", "has space", "x" * 129, "a/b"):
        with pytest.raises(SecretNameError, match="is not allowed"):
            service.set("alice", bad, "v")
    with pytest.raises(ValueError, match="at most 65536"):
        service.set("alice", "big", "x" * 70_000)


def test_the_master_key_file_is_created_private_once_and_read_after(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(MasterKeyError, match=r"master\.key does not exist"):
        key_provider(settings)
    created = key_provider(settings, create=True)
    path = tmp_path / "home" / "master.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert key_provider(settings).current_key_id == created.current_key_id
    path.write_text("not-base64!\n")
    with pytest.raises(MasterKeyError, match="entry 1 is not a base64-encoded 32-byte key"):
        key_provider(settings)
