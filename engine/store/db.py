"""Database engines for the two supported backends (`engine.store.open.open_store` opens a store on one).

SQLite (the embedded default) runs in WAL mode so readers never block the writer, with foreign keys enforced and
a busy timeout so concurrent writers wait instead of failing. PostgreSQL (production) gets a bounded connection
pool, timeouts, and a check at checkout that replaces connections the server dropped (a restart, an
administrator's `pg_terminate_backend`, an idle timeout) transparently, without a round trip (see `_check_alive`).
"""

from __future__ import annotations

import select
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from engine.store.base import WRITE_OPTION


@dataclass(frozen=True)
class DatabaseOptions:
    """Tuning of the connection pool and timeouts; the defaults suit one API replica or one driver process."""

    pool_size: int = 10
    max_overflow: int = 20
    pool_timeout_s: float = 30.0
    pool_recycle_s: int = 1800
    connect_timeout_s: int = 10
    sqlite_busy_timeout_ms: int = 30_000
    echo: bool = False


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain `postgresql://` (and `postgres://`) URLs use the psycopg 3 driver."""
    # str() of a URL masks its password ("***"): render it in full, or the engine would connect with the mask.
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    parsed = make_url(text)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_sqlite_folder(url: URL) -> None:
    """Create the folder of the SQLite file database at `url` when missing (nothing for other databases)."""
    if url.get_backend_name() == "sqlite" and not _is_memory_sqlite(url) and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_db_engine(url: str | URL, options: DatabaseOptions | None = None) -> Engine:
    """Create a SQLAlchemy engine configured for `url`'s backend (SQLite or PostgreSQL)."""
    opts = options or DatabaseOptions()
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, opts)
    if backend == "postgresql":
        engine = sa.create_engine(
            parsed,
            echo=opts.echo,
            pool_size=opts.pool_size,
            max_overflow=opts.max_overflow,
            pool_timeout=opts.pool_timeout_s,
            pool_recycle=opts.pool_recycle_s,
            # Not SQLAlchemy's pre-ping: it costs a round trip per checkout (a third of a cold key check).
            pool_pre_ping=False,
            connect_args={
                "connect_timeout": opts.connect_timeout_s,
                "application_name": "rayweave",
                # A connection lost without a word (a proxy, a network partition) errors within ~a minute
                # instead of hanging; the disconnect error then invalidates the whole pool (SQLAlchemy).
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
        event.listen(engine, "checkout", _check_alive)
        return engine
    raise ValueError(
        f"database URL {parsed.render_as_string(hide_password=True)!r} uses backend {backend!r}; "
        "rayweave supports sqlite:///PATH and postgresql://USER@HOST/DB"
    )


def _check_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Raise `DisconnectionError` for a pooled PostgreSQL connection the server has dropped; the pool then
    discards it and checks out another (or connects anew), so the caller never sees the dead one.

    An idle connection's socket has nothing to read unless the server spoke: a terminated backend sends its
    FATAL error and closes, a restarted server closes. So a readable socket (checked with a zero timeout: no
    round trip) is pinged, and only an idle, silent one is taken as it is. A connection lost without a word
    fails its first statement instead (a 503 to the caller, retried by clients); that error invalidates every
    connection of the pool checked out before it, and TCP keepalives bound how long such a loss goes unseen.
    """
    if dbapi_connection.closed:
        raise sa.exc.DisconnectionError("the connection was closed")
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError) as exc:  # the socket is gone
        raise sa.exc.DisconnectionError(f"the connection's socket is gone: {exc}") from exc
    if not readable:
        return
    try:  # the server said something while the connection was idle (its goodbye, or a notice): ask it
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        raise sa.exc.DisconnectionError(f"the server dropped the connection: {exc}") from exc


def _sqlite_engine(url: URL, opts: DatabaseOptions) -> Engine:
    memory = _is_memory_sqlite(url)
    kwargs: dict[str, Any] = {"echo": opts.echo, "connect_args": {"check_same_thread": False}}
    if memory:
        # One shared connection, otherwise every pooled connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(
            pool_size=opts.pool_size, max_overflow=opts.max_overflow, pool_timeout=opts.pool_timeout_s
        )
    engine = sa.create_engine(url, **kwargs)
    busy_ms = opts.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the
                # last transactions, which is the trade-off SQLite documents for WAL.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # pysqlite would otherwise start transactions lazily at the first write, so reads made before it
        # would not be part of the transaction. Writers take the lock up front (see Repository.session).
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
