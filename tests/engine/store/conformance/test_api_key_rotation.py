"""Key rotation and expiry in the store (issue 18, key hygiene), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.store import InvalidApiKeyError, NotFoundError, Store
from engine.store.api_keys import LAST_USED_RESOLUTION
from tests.engine.store.conformance import utcnow


def test_rotation_issues_a_new_secret_and_revokes_the_old_key_after_its_grace(store: Store) -> None:
    user = store.users.create("carol")
    old, old_secret = store.api_keys.create(user.id, name="ci", scopes=["runs:read", "workflows:read"])
    before = utcnow()
    rotated, new, new_secret = store.api_keys.rotate(old.id, grace_s=60)
    assert (new.user_id, new.name, new.scopes) == (old.user_id, old.name, old.scopes)
    assert new.id != old.id and new_secret != old_secret and new.prefix != old.prefix
    assert rotated.revoked_at is not None
    assert timedelta(seconds=59) < rotated.revoked_at - before < timedelta(seconds=62)
    # In its grace period the old key still verifies and is still listed; afterwards it is refused.
    assert store.api_keys.verify(old_secret).id == old.id
    assert {k.id for k in store.api_keys.list(user_id=user.id)} == {old.id, new.id}
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        store.api_keys.verify(old_secret, now=rotated.revoked_at + timedelta(seconds=1))
    assert store.api_keys.verify(new_secret).id == new.id
    # Rotating it again is refused (rotate the replacement); revoking it ends the grace now.
    with pytest.raises(InvalidApiKeyError, match="rotate its replacement"):
        store.api_keys.rotate(old.id)
    revoked = store.api_keys.revoke(old.id)
    assert revoked.revoked_at is not None and revoked.revoked_at < rotated.revoked_at
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        store.api_keys.verify(old_secret)
    with pytest.raises(NotFoundError):
        store.api_keys.rotate("no-such-key")


def test_rotation_without_grace_revokes_at_once_and_keeps_the_lifetime(store: Store) -> None:
    user = store.users.create("dave")
    old, old_secret = store.api_keys.create(
        user.id, scopes=["runs:read"], expires_at=utcnow() + timedelta(hours=2)
    )
    _rotated, new, _secret = store.api_keys.rotate(old.id)
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        store.api_keys.verify(old_secret)
    assert new.expires_at is not None
    assert abs((new.expires_at - new.created_at) - timedelta(hours=2)) < timedelta(seconds=5)
    _rotated, newer, _secret = store.api_keys.rotate(new.id, keep_expiry=False)
    assert newer.expires_at is None


def test_an_expired_key_names_its_expiry_and_the_way_to_a_new_key(store: Store) -> None:
    user = store.users.create("erin")
    _key, secret = store.api_keys.create(
        user.id, scopes=["runs:read"], expires_at=utcnow() - timedelta(seconds=1)
    )
    with pytest.raises(InvalidApiKeyError, match=r"expired at .*POST /v1/keys.*rayweave keys create"):
        store.api_keys.verify(secret)


def test_last_used_is_written_at_most_once_per_window(store: Store) -> None:
    user = store.users.create("frank")
    key, secret = store.api_keys.create(user.id, scopes=["runs:read"])
    first = utcnow()
    store.api_keys.verify(secret, now=first)
    assert store.api_keys.get(key.id).last_used_at == first
    store.api_keys.verify(secret, now=first + LAST_USED_RESOLUTION - timedelta(seconds=1))
    assert store.api_keys.get(key.id).last_used_at == first
    later = first + LAST_USED_RESOLUTION
    store.api_keys.verify(secret, now=later)
    assert store.api_keys.get(key.id).last_used_at == later
