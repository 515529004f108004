"""`copy_installation`: SQLite <-> PostgreSQL copies, verified by counts and hashes, safe to re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import MigrationError, open_store
from engine.store.models import ALL_TABLES
from engine.store.transfer import copy_installation, table_digest
from tests.engine.store.conformance.populate import populate


def test_sqlite_to_postgres_and_back_preserves_every_row(tmp_path: Path, fresh_pg_url: str) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source)
    pg = open_store(fresh_pg_url)
    report = copy_installation(source, pg)
    assert report.tables["events"]["source"] == 10 and report.tables["events"]["copied"] == 10
    back = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    copy_installation(pg, back)
    for model in ALL_TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        assert table_digest(source, table) == table_digest(back, table), table.name
    # The copy is a working installation: keys verify, ids continue after the copied ones.
    assert pg.workflows.history(source.workflows.list()[0].id)[0].version == 2
    entry = pg.audit.append("bob", "x")
    assert entry.id is not None and entry.id > max(e.id or 0 for e in source.audit.list())
    for store in (source, pg, back):
        store.close()


def test_an_interrupted_copy_is_finished_by_running_it_again(tmp_path: Path) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source, runs=8)
    target = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    # Simulate an interruption: only part of the first tables made it over.
    with source.engine.connect() as src, target.engine.begin() as dst:
        for model in ALL_TABLES[:3]:
            table = model.__table__  # type: ignore[attr-defined]
            rows = [dict(r) for r in src.execute(sa.select(table)).mappings()][:3]
            dst.execute(sa.insert(table), rows)
    report = copy_installation(source, target)
    assert report.tables["runs"]["copied"] == report.tables["runs"]["source"] - 3
    again = copy_installation(source, target)
    assert all(t["copied"] == 0 for t in again.tables.values())
    source.close()
    target.close()


def test_copy_into_a_database_with_different_data_fails_naming_the_table(tmp_path: Path) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source)
    target = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    target.audit.append("mallory", "something.else")
    with pytest.raises(MigrationError, match="audit_entries"):
        copy_installation(source, target)
    source.close()
    target.close()
