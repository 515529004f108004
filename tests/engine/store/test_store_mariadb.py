"""What the MariaDB/MySQL backend does differently underneath, checked on the MariaDB server on 127.0.0.1:3306
(the conformance suite checks that the store behaves the same: `conftest.BACKENDS`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from engine.store import MigrationError, Store, open_store
from engine.store.db import normalize_url
from engine.store.locks import lock_name
from engine.store.store import SqlStore
from tests.engine.store import sql_support

pytestmark = pytest.mark.mariadb


def test_urls_use_pymysql_and_sessions_run_in_utc_at_read_committed(mariadb_store: Store) -> None:
    assert normalize_url("mysql://u@h/db").drivername == "mysql+pymysql"
    assert normalize_url("mariadb://u@h/db").drivername == "mariadb+pymysql"
    assert isinstance(mariadb_store, SqlStore)
    with mariadb_store.engine.connect() as conn:
        zone, isolation, mode = conn.exec_driver_sql(
            "SELECT @@session.time_zone, @@session.tx_isolation, @@session.sql_mode"
        ).one()
    assert (zone, isolation) == ("+00:00", "READ-COMMITTED")
    assert "STRICT_ALL_TABLES" in mode


def test_timestamps_keep_microseconds_and_strings_compare_case_sensitively(mariadb_store: Store) -> None:
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    at = datetime(2026, 12, 7, 10, 11, 12, 345678, tzinfo=UTC)
    upper = mariadb_store.runs.create(document=doc, idempotency_key="Key", at=at).run
    lower = mariadb_store.runs.create(document=doc, idempotency_key="key").run
    assert upper.id != lower.id  # a case-insensitive collation would have answered with the same run
    assert mariadb_store.runs.get(upper.id).created_at == at


def test_json_nested_as_deep_as_rayweave_accepts_is_stored(mariadb_store: Store) -> None:
    # MariaDB's JSON_VALID (the automatic CHECK of its JSON columns) refuses 32 levels and more; the
    # migrations drop that check, so what the API accepts (64 levels, engine.jsonlimits) is stored.
    deep: object = {"leaf": 1}
    for _ in range(60):
        deep = [deep]
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    run = mariadb_store.runs.create(document=doc, inputs={"deep": deep}).run
    assert mariadb_store.runs.get(run.id).inputs == {"deep": deep}


def test_the_store_refuses_an_unknown_state_by_the_check_constraint(mariadb_store: Store) -> None:
    assert isinstance(mariadb_store, SqlStore)
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    run = mariadb_store.runs.create(document=doc).run
    with pytest.raises(sa.exc.IntegrityError, match="ck_runs_status"), mariadb_store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET status = 'paused' WHERE id = '{run.id}'")


def test_named_locks_are_given_back_when_the_transaction_ends(mariadb_store: Store) -> None:
    assert isinstance(mariadb_store, SqlStore)
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    mariadb_store.runs.create(document=doc, owner="ann", max_active=5)  # takes the quota lock of ann
    mariadb_store.audit.append("ann", "x")  # takes the audit append lock
    database = mariadb_store.engine.url.database
    with mariadb_store.engine.connect() as conn:
        for key in ("quota:ann", "audit-append"):
            name = lock_name(database, key)
            assert conn.execute(sa.text("SELECT IS_FREE_LOCK(:n)"), {"n": name}).scalar() == 1
    assert lock_name(database, "audit-append") != lock_name("another_installation", "audit-append")


def test_a_database_with_a_case_insensitive_collation_is_refused_naming_the_fix() -> None:
    url = sql_support.create_mariadb_database(f"rayweave_test_ci_{datetime.now(UTC):%H%M%S%f}")
    try:
        with sql_support.mariadb_admin_connection() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE `{url.rsplit('/', 1)[1]}` COLLATE utf8mb4_general_ci")
        with pytest.raises(MigrationError, match="utf8mb4_nopad_bin"):
            open_store(url)
    finally:
        sql_support.drop_mariadb_database(url)


def test_a_connection_the_server_dropped_is_replaced_without_an_error(mariadb_store: Store) -> None:
    assert isinstance(mariadb_store, SqlStore)
    mariadb_store.workflows.list()  # a pooled connection, idle now
    with mariadb_store.engine.connect() as conn:
        mine = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    with sql_support.mariadb_admin_connection() as admin:
        admin.exec_driver_sql(f"KILL {int(mine)}")  # as a server restart or wait_timeout would
    assert mariadb_store.workflows.list() == []
