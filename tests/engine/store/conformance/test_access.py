"""Users, permissions, API keys (hash only, scopes, expiry, revocation), plugins and the audit log."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from engine.store import InvalidApiKeyError, NotFoundError, Store
from tests.engine.store.conformance import utcnow


def test_api_key_secret_is_returned_once_and_only_its_hash_is_stored(store: Store) -> None:
    user = store.users.create("ada", email="ada@example.org")
    record, secret = store.api_keys.create(
        user.id, name="ci", scopes=["runs:write", "runs:read", "runs:read"]
    )
    assert secret.startswith(f"rw_{record.prefix}_")
    assert len(secret) > 50
    assert record.scopes == ["runs:read", "runs:write"]
    stored = store.api_keys.get(record.id).model_dump()
    assert secret not in {str(v) for v in stored.values()}
    assert stored["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    verified = store.api_keys.verify(secret)
    assert (verified.id, verified.user_id, verified.scopes) == (
        record.id,
        user.id,
        ["runs:read", "runs:write"],
    )
    assert store.api_keys.get(record.id).last_used_at is not None


def test_wrong_malformed_revoked_expired_and_disabled_keys_do_not_verify(store: Store) -> None:
    user = store.users.create("bob")
    _, good = store.api_keys.create(user.id)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    with pytest.raises(InvalidApiKeyError, match="not valid") as info:
        store.api_keys.verify(tampered)
    assert tampered not in str(info.value)
    for bad in ("", "bearer", "xx_abc_def", "rw_unknown_secret"):
        with pytest.raises(InvalidApiKeyError):
            store.api_keys.verify(bad)
    soon, expiring = store.api_keys.create(user.id, expires_at=utcnow() + timedelta(hours=1))
    assert store.api_keys.verify(expiring).id == soon.id
    with pytest.raises(InvalidApiKeyError, match="expired"):
        store.api_keys.verify(expiring, now=utcnow() + timedelta(hours=2))
    revoked, revoked_secret = store.api_keys.create(user.id)
    first = store.api_keys.revoke(revoked.id).revoked_at
    assert store.api_keys.revoke(revoked.id).revoked_at == first
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        store.api_keys.verify(revoked_secret)
    assert revoked.id not in {k.id for k in store.api_keys.list(user_id=user.id)}
    assert revoked.id in {k.id for k in store.api_keys.list(user_id=user.id, include_revoked=True)}
    store.users.set_disabled(user.id, True)
    with pytest.raises(InvalidApiKeyError, match="disabled"):
        store.api_keys.verify(good)
    with pytest.raises(NotFoundError):
        store.api_keys.create("no-such-user")


def test_permissions_match_exact_and_wildcard_grants(store: Store) -> None:
    ada = store.users.create("ada")
    admin = store.users.create("root", is_admin=True)
    store.users.grant(ada.id, "read", "workflow", "wf-1")
    store.users.grant(ada.id, "read", "workflow", "wf-1")  # granting twice is harmless
    store.users.grant(ada.id, "run", "workflow")
    assert store.users.is_allowed(ada.id, "read", "workflow", "wf-1")
    assert not store.users.is_allowed(ada.id, "read", "workflow", "wf-2")
    assert store.users.is_allowed(ada.id, "run", "workflow", "wf-2")
    assert not store.users.is_allowed(ada.id, "write", "workflow", "wf-1")
    assert store.users.is_allowed(admin.id, "write", "workflow", "wf-1")
    assert len(store.users.permissions(ada.id)) == 2
    assert store.users.revoke(ada.id, "run", "workflow")
    assert not store.users.revoke(ada.id, "run", "workflow")
    assert not store.users.is_allowed(ada.id, "run", "workflow", "wf-2")
    store.users.set_disabled(admin.id, True, keep_an_owner=False)  # the tenant's only owner
    assert not store.users.is_allowed(admin.id, "read", "workflow", "wf-1")
    assert not store.users.is_allowed("ghost", "read", "workflow")


def test_usernames_are_unique(store: Store) -> None:
    store.users.create("ada")
    with pytest.raises(ValueError, match="ada"):
        store.users.create("ada")
    assert store.users.get_by_username("ada").username == "ada"
    assert [u.username for u in store.users.list()] == ["ada"]
    with pytest.raises(NotFoundError):
        store.users.get_by_username("eve")


def test_plugins_install_several_versions_replace_and_remove(store: Store) -> None:
    store.plugins.add("geo", "1.0.0", {"nodes": ["geo/buffer@1"]})
    store.plugins.add("geo", "2.0.0", {"nodes": ["geo/buffer@2"]})
    store.plugins.add("geo", "1.0.0", {"nodes": ["geo/buffer@1", "geo/area@1"]})
    assert [p.version for p in store.plugins.list(name="geo")] == ["1.0.0", "2.0.0"]
    assert store.plugins.get("geo", "1.0.0").manifest == {"nodes": ["geo/buffer@1", "geo/area@1"]}
    store.plugins.set_enabled("geo", "2.0.0", False)
    assert [p.version for p in store.plugins.list(enabled_only=True)] == ["1.0.0"]
    store.plugins.remove("geo", "1.0.0")
    with pytest.raises(NotFoundError, match="geo"):
        store.plugins.get("geo", "1.0.0")
    with pytest.raises(NotFoundError):
        store.plugins.remove("geo", "1.0.0")


def test_audit_log_lists_newest_first_with_filters_and_paging(store: Store) -> None:
    for i in range(5):
        store.audit.append("ada", "workflow.save", resource_type="workflow", resource_id=f"wf-{i % 2}")
    store.audit.append("bob", "key.create", outcome="denied", details={"reason": "scope"})
    entries = store.audit.list()
    assert [e.actor for e in entries][:2] == ["bob", "ada"]
    assert entries[0].details == {"reason": "scope"} and entries[0].outcome == "denied"
    assert len(store.audit.list(actor="ada", resource_id="wf-0")) == 3
    page1 = store.audit.list(limit=4)
    page2 = store.audit.list(limit=4, before_id=page1[-1].id)
    assert len(page1) == 4 and len(page2) == 2
    assert not {e.id for e in page1} & {e.id for e in page2}
    assert store.audit.list(since=utcnow() + timedelta(minutes=1)) == []


def test_scopes_match_exactly_or_by_wildcard() -> None:
    from engine.store.api_keys import scope_allows

    assert scope_allows(["runs:read"], "runs:read")
    assert not scope_allows(["runs:read"], "runs:write")
    assert scope_allows(["runs:*"], "runs:write")
    assert not scope_allows(["runs:*"], "workflows:read")
    assert scope_allows(["*"], "keys:admin")
    assert not scope_allows([], "runs:read")
