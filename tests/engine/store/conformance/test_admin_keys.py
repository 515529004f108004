"""The store never lets the last active admin key go (issue 16, critical 3), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from engine.store import LastAdminKeyError, Store
from tests.engine.store.conformance import utcnow


def test_the_last_active_admin_key_cannot_be_revoked(store: Store) -> None:
    root = store.users.create("root", is_admin=True)
    first, _ = store.api_keys.create(root.id, scopes=["admin"])
    second, _ = store.api_keys.create(root.id, scopes=["*"])
    assert store.api_keys.revoke(second.id).revoked_at is not None
    with pytest.raises(LastAdminKeyError, match=r"last active admin key.*rayweave keys create --admin"):
        store.api_keys.revoke(first.id)
    assert [k.id for k in store.api_keys.active_admin_keys()] == [first.id]
    assert store.api_keys.get(first.id).revoked_at is None


def test_expired_disabled_and_narrower_keys_do_not_count_as_admins(store: Store) -> None:
    root = store.users.create("root", is_admin=True)
    last, _ = store.api_keys.create(root.id, scopes=["admin"])
    store.api_keys.create(root.id, scopes=["admin"], expires_at=utcnow() - timedelta(seconds=1))
    gone = store.users.create("gone")
    store.api_keys.create(gone.id, scopes=["admin"])
    store.users.set_disabled(gone.id, True)
    store.api_keys.create(root.id, scopes=["keys:admin", "runs:*"])
    with pytest.raises(LastAdminKeyError):
        store.api_keys.revoke(last.id)
    # A key that is not an admin key, or no longer active, goes as usual.
    narrow, _ = store.api_keys.create(root.id, scopes=["runs:read"])
    store.api_keys.revoke(narrow.id)
    expired, _ = store.api_keys.create(root.id, scopes=["admin"], expires_at=utcnow() - timedelta(seconds=1))
    store.api_keys.revoke(expired.id)
    # The operator's explicit override (not offered by the API) still works.
    assert store.api_keys.revoke(last.id, keep_an_admin=False).revoked_at is not None
    assert store.api_keys.active_admin_keys() == []


def test_concurrent_revocations_keep_one_admin_key(store: Store) -> None:
    root = store.users.create("root", is_admin=True)
    keys = [store.api_keys.create(root.id, scopes=["admin"])[0] for _ in range(4)]
    barrier = threading.Barrier(len(keys))
    outcomes: list[str] = []

    def revoke(key_id: str) -> None:
        barrier.wait()
        try:
            store.api_keys.revoke(key_id)
            outcomes.append("revoked")
        except LastAdminKeyError:
            outcomes.append("refused")

    threads = [threading.Thread(target=revoke, args=(k.id,)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused", "revoked", "revoked", "revoked"]
    assert len(store.api_keys.active_admin_keys()) == 1
