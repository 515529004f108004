"""Tenants, roles, the last-owner guard, shares and what a user may see (issue 18), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine.store import Store
from engine.store.roles import LastOwnerError
from engine.store.shares import Audience, Share
from nodes.ids import WorkflowId


def _doc(name: str) -> dict[str, object]:
    return {"format": "rayweave.workflow/1", "name": name, "nodes": {}}


def test_users_join_the_default_tenant_with_a_role(store: Store) -> None:
    root = store.users.create("root", is_admin=True)
    alice = store.users.create("alice")
    assert (root.tenant_id, root.role) == ("default", "owner")
    assert (alice.tenant_id, alice.role) == ("default", "member")
    acme = store.tenants.create("acme")
    bob = store.users.create("bob", tenant_id=acme.id, role="viewer")
    assert store.users.get(bob.id).tenant_id == acme.id
    assert [u.username for u in store.users.list(tenant_id=acme.id)] == ["bob"]
    assert store.tenants.ensure("acme").id == acme.id
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        store.users.create("carol", role="boss")
    with pytest.raises(ValueError, match="already exists"):
        store.tenants.create("acme")


def test_verify_with_user_reads_key_user_tenant_and_role(store: Store) -> None:
    acme = store.tenants.create("acme")
    bob = store.users.create("bob", tenant_id=acme.id, role="runner")
    key, secret = store.api_keys.create(bob.id, scopes=["runs:read"])
    got_key, user = store.api_keys.verify_with_user(secret)
    assert got_key.id == key.id and (user.id, user.tenant_id, user.role) == (bob.id, acme.id, "runner")


def test_a_tenant_keeps_an_enabled_owner(store: Store) -> None:
    root = store.users.create("root", is_admin=True)
    store.api_keys.create(root.id, scopes=["admin"])
    acme = store.tenants.create("acme")
    first = store.users.create("first", tenant_id=acme.id, role="owner")
    second = store.users.create("second", tenant_id=acme.id, role="admin")
    with pytest.raises(LastOwnerError, match="last enabled owner of tenant"):
        store.users.set_role(first.id, "admin")
    with pytest.raises(LastOwnerError, match="last enabled owner"):
        store.users.set_disabled(first.id, True)
    user, previous = store.users.set_role(second.id, "owner")
    assert (user.role, previous) == ("owner", "admin")
    assert store.users.set_role(first.id, "editor")[0].role == "editor"
    assert store.users.set_disabled(first.id, True).disabled
    # The installation's last admin (its only admin key's user) cannot be disabled either.
    other = store.users.create("other-owner", role="owner")
    assert store.users.set_role(other.id, "owner")[0].role == "owner"
    with pytest.raises(LastOwnerError, match="every active admin key"):
        store.users.set_disabled(root.id, True)


def test_shares_and_visibility(store: Store) -> None:
    acme, other = store.tenants.create("acme"), store.tenants.create("other")
    alice = store.users.create("alice", tenant_id=acme.id, role="editor")
    bob = store.users.create("bob", tenant_id=acme.id, role="runner")
    boss = store.users.create("boss", tenant_id=acme.id, role="admin")
    eve = store.users.create("eve", tenant_id=other.id, role="owner")
    wf = WorkflowId(store.workflows.create(_doc("a"), owner=alice.id).workflow_id)
    private = WorkflowId(store.workflows.create(_doc("b"), owner=alice.id).workflow_id)
    run = store.runs.create(workflow_id=wf, workflow_version=1, owner=alice.id).run
    inline = store.runs.create(document=_doc("x"), owner=alice.id).run

    def sees(user: object, whole: bool = False) -> tuple[set[str], set[str]]:
        audience = Audience(user.id, user.tenant_id, whole)  # type: ignore[attr-defined]
        workflows = {w.id for w in store.workflows.list(visible_to=audience)}
        runs = {r.id for r in store.runs.list(visible_to=audience).items}
        return workflows, runs

    assert sees(bob) == (set(), set())
    assert sees(alice) == ({wf, private}, {run.id, inline.id})
    assert sees(boss, whole=True) == ({wf, private}, {run.id, inline.id})
    assert sees(eve, whole=True) == (set(), set())
    store.shares.set(wf, "tenant", acme.id, "viewer", actor="alice")
    assert sees(bob) == ({wf}, {run.id})
    assert store.shares.role_of(wf, Audience(bob.id, acme.id)) == "viewer"
    store.shares.set(wf, "user", bob.id, "runner")
    assert store.shares.role_of(wf, Audience(bob.id, acme.id)) == "runner"
    bobs = store.runs.create(workflow_id=wf, workflow_version=1, owner=bob.id).run
    assert bobs.id in sees(alice)[1]  # runs are visible to whoever may see their workflow
    assert sees(eve, whole=True) == (set(), set())
    assert store.shares.role_of(wf, Audience(eve.id, other.id)) is None
    assert store.shares.replace(wf, [Share(wf, "user", eve.id, "editor")]) == [
        Share(wf, "user", eve.id, "editor")
    ]
    assert sees(eve) == ({wf}, {run.id, bobs.id}) and sees(bob) == (set(), {bobs.id})
    assert store.shares.remove(wf, "user", eve.id) and not store.shares.remove(wf, "user", eve.id)
    with pytest.raises(ValueError, match="cannot be shared at 'owner'"):
        store.shares.set(wf, "user", bob.id, "owner")
