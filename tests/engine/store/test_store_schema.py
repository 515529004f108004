"""The schema: migrations agree with the models on both backends; engines are configured as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.store import Store, normalize_url, open_store
from engine.store.columns import UTCDateTime
from engine.store.migrate import HEAD_REVISION, current_revision, head_revision, upgrade_database
from engine.store.models import metadata
from engine.store.partitions import is_partition


def schema_differences(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "target_metadata": metadata,
                # PostgreSQL's partitions of events and node runs (migration 0010) are not tables of the models.
                "include_name": lambda name, type_, _: not (type_ == "table" and is_partition(name)),
            },
        )
        return [d for d in compare_metadata(context, metadata) if not _is_alembic_table(d)]


def _is_alembic_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and getattr(diff[1], "name", "") == "alembic_version"


def test_migrations_produce_exactly_the_models_schema(store: Store) -> None:
    # `store` was built by running the migrations, never by metadata.create_all.
    assert current_revision(store.engine) == head_revision()
    assert schema_differences(store) == []


def test_comparison_would_notice_a_model_the_migrations_lack(store: Store) -> None:
    extra = sa.Table("not_migrated", metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        assert any(d[0] == "add_table" for d in schema_differences(store))
    finally:
        metadata.remove(extra)


def test_upgrade_is_idempotent_and_creates_the_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "home" / "rayweave.db"
    store = open_store(f"sqlite:///{path}")
    assert path.exists()
    assert upgrade_database(store.engine) == head_revision()
    store.workflows.create({"name": "w", "nodes": {}})
    store.close()
    reopened = open_store(f"sqlite:///{path}")
    assert len(reopened.workflows.list()) == 1
    reopened.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    with pytest.raises(sa.exc.IntegrityError):
        store.node_runs.record_many([{"run_id": "missing", "node_id": "a", "attempt": 1, "status": "x"}])
    store.close()


def test_postgres_engine_uses_psycopg_with_a_checkout_check_and_a_bounded_pool(pg_store: Store) -> None:
    engine = pg_store.engine
    assert engine.dialect.driver == "psycopg"
    # Dropped connections are replaced by a check without a round trip (test_pg_dropped_connections.py).
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]
    assert engine.pool.size() == 10  # type: ignore[attr-defined]


def test_urls_are_normalized_to_the_psycopg_driver() -> None:
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ValueError, match="supports sqlite"):
        open_store("oracle://u@h/db", upgrade=False)


def test_timestamps_come_back_aware_and_naive_ones_are_refused(store: Store) -> None:
    from datetime import datetime

    wf = store.workflows.create({"name": "w", "nodes": {}})
    assert wf.created_at.tzinfo is not None
    assert store.workflows.get(wf.workflow_id).created_at == wf.created_at
    with pytest.raises(Exception, match="no time zone"):
        store.runs.heartbeat(store.runs.create(workflow_id=wf.workflow_id).run.id, at=datetime(2026, 1, 1))
    assert UTCDateTime().process_result_value(None, sa.create_engine("sqlite://").dialect) is None


def test_the_head_constant_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION, "set engine.store.migrate.HEAD_REVISION to the newest migration"


def test_opening_a_store_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rayweave.db'}"
    open_store(url).close()  # created and migrated
    probe = (
        "import sys; from engine.store import open_store; "
        f"open_store({url!r}).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", "opening an up-to-date store imported Alembic (about 0.2 s)"
