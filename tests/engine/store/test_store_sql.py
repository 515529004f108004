"""What only the SQL backend can show: the rows as the database holds them, and how its failures are told."""

from __future__ import annotations

import hashlib

import pytest

from engine.store import Store, backend_errors, is_unavailable, open_store
from tests.engine.store.sql_support import stored_rows


def test_only_the_hash_of_an_api_key_secret_is_in_the_database(store: Store) -> None:
    user = store.users.create("ada")
    _, secret = store.api_keys.create(user.id, name="ci", scopes=["runs:read"])
    (stored,) = stored_rows(store, "api_keys")
    assert secret not in {str(v) for v in stored.values()}
    assert stored["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()


def test_an_unreachable_database_is_a_backend_error_that_says_unavailable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    unreachable = open_store("postgresql://postgres@127.0.0.1:1/nothing", upgrade=False)
    try:
        with pytest.raises(backend_errors()) as caught:
            unreachable.ping()
    finally:
        unreachable.close()
    assert is_unavailable(caught.value)
    assert not is_unavailable(ValueError("not a database failure"))


def test_the_connect_url_keeps_the_password_the_url_hides() -> None:
    store = open_store("postgresql://rw:s3cret@127.0.0.1:1/nothing", upgrade=False)
    try:
        assert "s3cret" in store.connect_url and "s3cret" not in store.url
    finally:
        store.close()
