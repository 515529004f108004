"""PostgreSQL connections the server drops while they idle in the pool are replaced at checkout, without the
caller seeing an error and without a round trip per checkout (`engine.store.db._check_alive`)."""

from __future__ import annotations

import time
from contextlib import ExitStack

import sqlalchemy as sa

from engine.store.db import create_db_engine
from tests.engine.store import sql_support


def _terminate(database: str, pids: set[int]) -> None:
    admin = sql_support._admin()
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar() is True
            deadline = time.monotonic() + 5
            while conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND pid = ANY(%(pids)s)",
                {"db": database, "pids": list(pids)},
            ).scalar():
                assert time.monotonic() < deadline, "the terminated backends did not go"
                time.sleep(0.02)
    finally:
        admin.dispose()


def test_connections_terminated_in_the_pool_are_replaced_at_checkout(fresh_pg_url: str) -> None:
    engine = create_db_engine(fresh_pg_url)
    assert engine.pool._pre_ping is False  # type: ignore[attr-defined]  # no round trip per checkout
    try:
        with ExitStack() as stack:  # three pooled connections, returned idle
            conns = [stack.enter_context(engine.connect()) for _ in range(3)]
            old = {int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) for c in conns}
        assert len(old) == 3
        _terminate(fresh_pg_url.rsplit("/", 1)[1], old)

        # Every checkout works (plain and AUTOCOMMIT, as the key check uses), each on a live, new backend.
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        seen = set()
        for bind in (engine, autocommit, engine, autocommit):
            with bind.connect() as conn:
                seen.add(int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
        assert not seen & old
        with engine.begin() as conn:  # and a write transaction
            conn.exec_driver_sql("CREATE TABLE t (x int)")
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").scalar_one() == 1
    finally:
        engine.dispose()
