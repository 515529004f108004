"""`copy_installation` (`rayweave db migrate`): copies between SQLite, PostgreSQL and MariaDB verified by counts
and content hashes, resumed after an interruption, refused into a database holding other data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.store import MigrationError, open_store
from engine.store.models import DeliveryStatus
from engine.store.shares import Audience
from engine.store.store import SqlStore
from engine.store.transfer import copy_installation, table_digest, tables
from engine.store.webhooks import NewDelivery
from tests.engine.store.conformance.populate import populate


@pytest.fixture
def sqlite_at(sqlite_template: Path, tmp_path: Path) -> Any:
    """Opens a migrated, empty SQLite store named `name` in the test's folder (a copy of the template)."""

    def make(name: str) -> SqlStore:
        shutil.copy(sqlite_template, tmp_path / name)
        return open_store(f"sqlite:///{tmp_path / name}")

    return make


@pytest.mark.mariadb
def test_sqlite_to_postgres_to_mariadb_and_back_preserves_every_row(
    sqlite_at: Any, fresh_pg_url: str, migrated_mariadb_url: str
) -> None:
    source = sqlite_at("a.db")
    populate(source)
    pg, maria = open_store(fresh_pg_url), open_store(migrated_mariadb_url)
    back = sqlite_at("b.db")
    report = copy_installation(source, pg)
    assert report.tables["events"]["source"] == 10 and report.tables["events"]["copied"] == 10
    copy_installation(pg, maria)
    copy_installation(maria, back)
    for table in tables():
        assert table_digest(source, table) == table_digest(back, table), table.name
    # Each copy is a working installation: versions are there, ids continue after the copied ones.
    for copy in (pg, maria):
        assert copy.workflows.history(source.workflows.list()[0].id)[0].version == 2
        entry = copy.audit.append("bob", "x")
        assert entry.id is not None and entry.id > max(e.id or 0 for e in source.audit.list())
        assert copy.audit.verify().ok
    for store in (source, pg, maria, back):
        store.close()


@pytest.mark.mariadb
def test_an_interrupted_copy_is_resumed_where_it_stopped(sqlite_at: Any, migrated_mariadb_url: str) -> None:
    source = sqlite_at("a.db")
    populate(source, runs=8)
    target = open_store(migrated_mariadb_url)
    batches: list[tuple[str, int]] = []

    def interrupt_after_three_batches(table: str, rows: int) -> None:
        batches.append((table, rows))
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_installation(source, target, batch_rows=3, progress=interrupt_after_three_batches)
    assert batches == [("workflows", 2), ("workflow_versions", 3), ("runs", 3)]
    report = copy_installation(source, target, batch_rows=3)
    assert report.resumed
    assert report.tables["runs"]["copied"] == report.tables["runs"]["source"] - 3
    assert report.tables["workflows"]["copied"] == 0
    assert all(len(t["hash"]) == 64 for t in report.tables.values())
    again = copy_installation(source, target)
    assert all(t["copied"] == 0 for t in again.tables.values())
    source.close()
    target.close()


def test_a_target_holding_other_data_is_refused_naming_the_table(sqlite_at: Any) -> None:
    source = sqlite_at("a.db")
    populate(source)
    target = sqlite_at("b.db")
    target.audit.append("mallory", "something.else")
    with pytest.raises(MigrationError, match="table 'audit_entries' holds 1 rows"):
        copy_installation(source, target)
    assert target.workflows.list() == []  # nothing was written
    # A target holding (part of) a copy from another database is refused too.
    other = sqlite_at("c.db")
    populate(other, runs=1)
    fresh = sqlite_at("d.db")
    copy_installation(other, fresh)
    with pytest.raises(MigrationError, match="holds a copy from another database"):
        copy_installation(source, fresh)
    for store in (source, target, other, fresh):
        store.close()


def test_sqlite_to_redis_and_back_preserves_every_row(sqlite_at: Any) -> None:
    from tests.engine.store.redis_support import redis_store

    source = sqlite_at("a.db")
    populate(source)
    source.tenants.create("acme")
    source.secrets.put("ada", "token", ciphertext="c", wrapped_key="w", key_id="k1", actor="ada")
    source.shares.set(source.workflows.list()[0].id, "tenant", "default", "runner", actor="ada")
    _webhook(source)
    shared = source.workflows.list()[0].id
    source.collab.start(shared, base_version=2, update=b"a")
    source.collab.append(shared, b"b")
    source.collab.compact(shared, upto=2, update=b"ab")
    source.collab.append(shared, b"c")
    back = sqlite_at("b.db")
    with redis_store() as middle:
        report = copy_installation(source, middle, batch_rows=4)
        assert report.tables["events"] == {
            "source": 10,
            "copied": 10,
            "hash": report.tables["events"]["hash"],
        }
        copy_installation(middle, back)
        for table in tables():
            assert table_digest(source, table) == table_digest(middle, table) == table_digest(back, table), (
                table.name
            )
        # Copying again finds the ledger and copies nothing; a copy from elsewhere is refused.
        assert all(t["copied"] == 0 for t in copy_installation(source, middle).tables.values())
        with pytest.raises(MigrationError, match="holds a copy from another database"):
            copy_installation(back, middle)
        with redis_store() as other:
            other.workflows.create({"format": "rayweave.workflow/1", "name": "mine", "nodes": {}})
            with pytest.raises(MigrationError, match="table 'workflows' holds 1 rows"):
                copy_installation(source, other)
        _works(middle, source)
    for store in (source, back):
        store.close()


def _webhook(store: SqlStore) -> None:
    """A webhook with a delivered, a leased and a scheduled delivery."""
    store.webhooks.create(
        subscription_id="hook",
        owner="ada",
        tenant_id="default",
        url="https://example.com/hook",
        event_types=["run.succeeded"],
        secret_ciphertext="c",
        secret_wrapped_key="w",
        secret_key_id="k1",
    )
    run = store.runs.list(status="succeeded").items[0].id
    new = [NewDelivery("run.succeeded", {"n": n}, run_id=run, seq=n, id=f"d{n}") for n in (1, 2, 3)]
    store.webhooks.enqueue("hook", new)
    first, _leased = store.webhooks.claim_due(limit=2)
    store.webhooks.record_attempt(first.id, status=DeliveryStatus.DELIVERED, status_code=200)


def _works(copy: Any, source: SqlStore) -> None:
    """The Redis copy is a working installation: lookups by name, key and id, and ids continue."""
    wf = source.workflows.list()[0].id
    assert copy.workflows.history(wf)[0].version == 2 and copy.workflows.list()[0].id == wf
    ada = copy.users.get_by_username("ada")
    assert copy.users.is_allowed(ada.id, "read", "workflow", wf)
    assert copy.users.grant(ada.id, "write").id == max(p.id for p in source.users.permissions(ada.id)) + 1
    assert [k.id for k in copy.api_keys.list(user_id=ada.id)] == [k.id for k in source.api_keys.list()]
    assert copy.audit.verify().ok and copy.audit.append("bob", "x").id == 2
    run = copy.runs.get_by_idempotency_key("local", "k0")
    assert run is not None and copy.events.append(run.id, []) == [] and copy.events.last_seq(run.id) == 2
    assert copy.runs.list(workflow_id=wf, status="succeeded").items
    assert copy.tenants.get_by_name("acme").id == source.tenants.get_by_name("acme").id
    assert copy.secrets.get("ada", "token").ciphertext == "c"
    assert copy.plugins.get("geo", "1.0.0").enabled
    assert copy.shares.list(wf) == source.shares.list(wf)
    assert copy.collab.read(wf) == source.collab.read(wf) == [(2, b"ab"), (3, b"c")]
    assert copy.collab.append(wf, b"d") == 4
    # The scheduled delivery is due; the leased one is not until its lease ends; the events were seen.
    assert [d.id for d in copy.webhooks.claim_due(limit=5)] == ["d3"]
    run = source.runs.list(status="succeeded").items[0].id
    copy.webhooks.enqueue("hook", [NewDelivery("run.succeeded", {}, run_id=run, seq=1, id="again")])
    assert sorted(d.id for d in copy.webhooks.deliveries("hook")) == ["d1", "d2", "d3"]
    assert [w.id for w in copy.workflows.list(visible_to=Audience(ada.id, "default"))] == [wf]
