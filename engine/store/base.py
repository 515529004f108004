"""What every repository shares: the engine and short, explicit transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

#: Execution option marking a connection whose transaction will write (see `engine.store.db`).
WRITE_OPTION = "rayweave_write"


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
