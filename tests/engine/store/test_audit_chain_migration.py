"""Migration 0004 chains the audit entries an installation recorded before it, so an upgraded log verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.store import Store, open_store
from engine.store.audit_chain import GENESIS
from engine.store.columns import utcnow
from tests.engine.store import sql_support


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store at revision 0003 (before the chain), closed by the test."""
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    store = open_store(url, upgrade=False)
    sql_support.upgrade_store_to(store, "0003")
    request.addfinalizer(store.close)
    return store


def test_upgrade_chains_existing_entries_in_order_and_they_verify(old_store: Store) -> None:
    start = utcnow() - timedelta(days=1)
    rows = [
        {
            "at": start + timedelta(minutes=n),
            "actor": f"user{n}",
            "action": "keys.create",
            "resource_type": "keys",
            "resource_id": f"k{n}",
            "outcome": "ok",
            "details": {"n": n, "big": 1e20, "text": "é"},
        }
        for n in range(1205)  # more than one batch of the migration
    ]
    sql_support.insert_unchained_audit_entries(old_store, rows)

    sql_support.upgrade_store_to(old_store, "head")

    entries = list(old_store.audit.entries())
    assert [e.actor for e in entries] == [r["actor"] for r in rows]
    assert entries[0].prev_hash == GENESIS
    result = old_store.audit.verify()
    assert (result.ok, result.checked) == (True, len(rows)), result.message
    # New entries continue the migrated chain.
    new = old_store.audit.append("admin", "keys.revoke")
    assert new.prev_hash == entries[-1].hash
    assert old_store.audit.verify().checked == len(rows) + 1
