"""What every repository shares: the engine and short, explicit transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from engine.store.columns import is_mysql

#: Execution option marking a connection whose transaction will write (see `engine.store.db`).
WRITE_OPTION = "rayweave_write"


def reserve(conn: sa.Connection, table: sa.Table, where: Any, count: int, **values: Any) -> int | None:
    """Advance the `last_seq` counter of the row `where` selects by `count` (setting `values` too) and return its
    new value; None when there is no such row. The UPDATE locks the row, which serializes concurrent reservers.

    One statement both reserves the numbers and says which they are where UPDATE ... RETURNING exists
    (PostgreSQL, SQLite >= 3.35), saving a round trip; MariaDB and MySQL have none, so there the locked row is
    read back in the same transaction.
    """
    update = sa.update(table).where(where).values(last_seq=table.c.last_seq + count, **values)
    if conn.dialect.update_returning:
        value = conn.execute(update.returning(table.c.last_seq)).scalar()
    elif conn.execute(update).rowcount != 1:
        return None
    else:
        value = conn.execute(sa.select(table.c.last_seq).where(where)).scalar()
    return None if value is None else int(value)


def insert_ignoring_duplicates(dialect_name: str, table: sa.Table) -> Any:
    """An INSERT of `table` that skips rows whose primary or unique key exists already, in `dialect_name`'s SQL:
    ON CONFLICT DO NOTHING (SQLite, PostgreSQL), ON DUPLICATE KEY UPDATE of the key to itself, a no-op
    (MariaDB/MySQL; not INSERT IGNORE, which would also turn bad values and broken foreign keys into warnings).
    """
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if is_mysql(dialect_name):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        key = next(iter(table.primary_key.columns))
        return mysql_insert(table).on_duplicate_key_update({key.name: key})
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


class Repository:
    """Base of the repositories. Each public method is one short transaction; returned rows are detached
    snapshots (changing them does not change the database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write session whose transaction commits when the block succeeds and rolls back when it raises.

        On SQLite the transaction takes the write lock when it begins (`BEGIN IMMEDIATE`): a transaction that
        reads first and writes later could otherwise fail at once with "database is locked" when another
        writer got in between, instead of waiting for the busy timeout.
        """
        with self._session(self.engine.execution_options(**{WRITE_OPTION: True})) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only (on SQLite it never blocks, nor is blocked by, the writer)."""
        with self._session(self.engine) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A Core connection in a write transaction, for hot paths where the ORM's per-row work would cost more
        than the database does (event appends, bulk attempt records)."""
        with self.engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            yield connection

    @staticmethod
    @contextmanager
    def _session(bind: Engine) -> Iterator[Session]:
        # expire_on_commit=False keeps returned objects readable after the session closes.
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session
