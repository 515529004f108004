"""Migration 0006 puts every existing user in the default tenant with a role that keeps what it could do."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from engine.store import Store, open_store
from engine.store.columns import utcnow
from tests.engine.store import sql_support


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store at revision 0005 (before tenants and roles), closed by the test."""
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    store = open_store(url, upgrade=False)
    sql_support.upgrade_store_to(store, "0005")
    request.addfinalizer(store.close)
    return store


def test_existing_users_get_the_default_tenant_and_a_role_from_their_keys(
    old_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process-wide sqlite3 adapter that stores datetimes as epoch seconds, as importing feast registers: the
    # migration must write its times through their column type, not leave them to whatever adapter is there.
    monkeypatch.setitem(sqlite3.adapters, (datetime, sqlite3.PrepareProtocol), lambda v: int(v.timestamp()))
    now = utcnow()
    users = [
        {"id": "u-root", "username": "admin", "is_admin": True},
        {"id": "u-keyed", "username": "ops", "is_admin": False},
        {"id": "u-plain", "username": "alice", "is_admin": False},
        {"id": "u-revoked", "username": "former", "is_admin": False},
    ]
    sql_support.insert_raw_rows(
        old_store,
        "users",
        [{**u, "email": None, "display_name": "", "disabled": False, "created_at": now} for u in users],
    )
    keys = [
        ("u-keyed", ["admin"], None),
        ("u-plain", ["runs:read", "plugins:admin"], None),
        ("u-revoked", ["*"], now),
    ]
    sql_support.insert_raw_rows(
        old_store,
        "api_keys",
        [
            {
                "id": f"k{n}",
                "user_id": user,
                "name": "",
                "prefix": f"p{n}",
                "key_hash": "0" * 64,
                "scopes": scopes,
                "created_at": now,
                "expires_at": None,
                "revoked_at": revoked,
                "last_used_at": None,
            }
            for n, (user, scopes, revoked) in enumerate(keys)
        ],
    )

    sql_support.upgrade_store_to(old_store, "head")

    roles = {u.username: (u.tenant_id, u.role) for u in old_store.users.list()}
    assert roles == {
        "admin": ("default", "owner"),
        "ops": ("default", "owner"),
        "alice": ("default", "member"),
        "former": ("default", "member"),
    }
    assert [t.name for t in old_store.tenants.list()] == ["default"]
    # New users keep joining the default tenant.
    assert old_store.users.create("newcomer").tenant_id == "default"


def test_an_empty_database_gets_no_tenant_row(old_store: Store) -> None:
    sql_support.upgrade_store_to(old_store, "head")
    assert old_store.tenants.list() == []
