"""Transaction-long named locks on MariaDB/MySQL, standing in for PostgreSQL's `pg_advisory_xact_lock`.

MariaDB and MySQL have named locks (`GET_LOCK`) but they belong to the connection, not to the transaction. The
lock is therefore marked on the pooled connection and released when the connection goes back to the pool
(`engine.store.db`), which is after its transaction committed or rolled back: whoever waited then reads what
the holder wrote (the sessions run at READ COMMITTED).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from engine.store.db import NAMED_LOCKS_INFO

#: How long a transaction waits for a named lock before it fails (a holder is one short transaction).
LOCK_TIMEOUT_S = 60


def lock_name(database: str | None, key: str) -> str:
    """The server-side name of the lock on `key` in `database`. Named locks are global to the server, so the
    database is part of the name (two installations on one server must not wait for each other); names are
    limited to 64 characters, so the two are hashed."""
    return f"rayweave:{hashlib.sha256(f'{database}/{key}'.encode()).hexdigest()[:40]}"


def hold_until_checkin(connection: sa.Connection, key: str, *, timeout_s: int = LOCK_TIMEOUT_S) -> None:
    """Take the named lock on `key` for the rest of `connection`'s transaction (MariaDB/MySQL only); raise
    `OperationalError` when another transaction held it for `timeout_s` seconds."""
    connection.info[NAMED_LOCKS_INFO] = True
    got = connection.execute(
        sa.text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": lock_name(connection.engine.url.database, key), "timeout": timeout_s},
    ).scalar()
    if got != 1:  # an OperationalError, like any other timeout of the database: the caller may retry
        raise sa.exc.OperationalError(
            "GET_LOCK",
            {"key": key},
            TimeoutError(
                f"waited {timeout_s} s for the store's lock on {key!r}, held by another transaction"
            ),
        )
