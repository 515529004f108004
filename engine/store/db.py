"""Database engines for the supported backends (`engine.store.open.open_store` opens a store on one).

SQLite (the embedded default) runs in WAL mode so readers never block the writer, with foreign keys enforced and
a busy timeout so concurrent writers wait instead of failing. PostgreSQL (production) gets a bounded connection
pool, timeouts, and a check at checkout that replaces connections the server dropped (a restart, an
administrator's `pg_terminate_backend`, an idle timeout) transparently, without a round trip (see `_check_alive`).
MariaDB (10.6+) and MySQL (8+) go through PyMySQL, a pure-Python driver (no client library to compile), with
the same pool, sessions in UTC and READ COMMITTED (PostgreSQL's default, which the store's conditional updates
and locks are written for; see `_mysql_engine`).
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
from engine.store.columns import MYSQL_DIALECTS

#: The key of a pooled connection's info dict saying it holds MariaDB/MySQL named locks (`engine.store.locks`).
NAMED_LOCKS_INFO = "rayweave_named_locks"


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
    """Parse a database URL; plain `postgresql://` (and `postgres://`) URLs use the psycopg 3 driver, plain
    `mysql://` and `mariadb://` URLs PyMySQL."""
    # str() of a URL masks its password ("***"): render it in full, or the engine would connect with the mask.
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    parsed = make_url(text)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername in MYSQL_DIALECTS:
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_sqlite_folder(url: URL) -> None:
    """Create the folder of the SQLite file database at `url` when missing (nothing for other databases)."""
    if url.get_backend_name() == "sqlite" and not _is_memory_sqlite(url) and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_db_engine(url: str | URL, options: DatabaseOptions | None = None) -> Engine:
    """Create a SQLAlchemy engine configured for `url`'s backend (SQLite, PostgreSQL, MariaDB or MySQL)."""
    opts = options or DatabaseOptions()
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, opts)
    if backend == "postgresql":
        engine = sa.create_engine(
            parsed,
            **_pool(opts),
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
    if backend in MYSQL_DIALECTS:
        return _mysql_engine(parsed, opts)
    raise ValueError(
        f"database URL {parsed.render_as_string(hide_password=True)!r} uses backend {backend!r}; "
        "rayweave supports sqlite:///PATH, postgresql://USER@HOST/DB and mysql:// or mariadb://USER@HOST/DB"
    )


def _pool(opts: DatabaseOptions) -> dict[str, Any]:
    """The connection pool settings of a server database (PostgreSQL, MariaDB, MySQL).

    Not SQLAlchemy's pre-ping: it costs a round trip per checkout (a third of a cold key check on PostgreSQL, a
    quarter of a short read with PyMySQL); a checkout listener of each backend checks the connection instead.
    """
    return {
        "echo": opts.echo,
        "pool_size": opts.pool_size,
        "max_overflow": opts.max_overflow,
        "pool_timeout": opts.pool_timeout_s,
        "pool_recycle": opts.pool_recycle_s,
        "pool_pre_ping": False,
    }


def _mysql_engine(url: URL, opts: DatabaseOptions) -> Engine:
    """MariaDB or MySQL through PyMySQL.

    Sessions run in UTC (DATETIME columns have no zone), with utf8mb4 and strict SQL modes (a too long or
    invalid value is an error, never silently cut), at READ COMMITTED: each statement sees what was committed
    before it, as on PostgreSQL, so a read after a lock sees the lock holder's writes, and InnoDB takes no gap
    locks (fewer deadlocks between concurrent appends). Named locks taken by `engine.store.locks` are released
    when the connection goes back to the pool, after its transaction ended.
    """
    engine = sa.create_engine(
        url,
        # MariaDB closes connections idle for wait_timeout (8 h by default): the pool recycles them earlier.
        **_pool(opts),
        isolation_level="READ COMMITTED",
        connect_args={
            "connect_timeout": opts.connect_timeout_s,
            "charset": "utf8mb4",
            "init_command": (
                "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
                "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
            ),
        },
    )
    event.listen(engine, "checkout", _mysql_alive)
    event.listen(engine, "checkin", _release_named_locks)
    event.listen(engine, "handle_error", _check_violation_as_integrity_error)
    return engine


#: Server error codes of a violated CHECK constraint: MariaDB's ER_CONSTRAINT_FAILED, MySQL's
#: ER_CHECK_CONSTRAINT_VIOLATED.
_CHECK_VIOLATIONS = frozenset({4025, 3819})


def _check_violation_as_integrity_error(context: Any) -> Any:
    # PyMySQL reports a violated CHECK constraint as OperationalError, which callers would take for a database
    # outage (`errors.is_unavailable`); PostgreSQL and SQLite say IntegrityError, and so does the store here.
    orig = context.original_exception
    if getattr(orig, "args", None) and orig.args[0] in _CHECK_VIOLATIONS:
        return sa.exc.IntegrityError(context.statement, context.parameters, orig)
    return None


def _mysql_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """`_check_alive` for PyMySQL: a pooled connection whose socket has something to read (the server closed it,
    or said goodbye) is pinged, and replaced when the ping fails; a silent one is taken without a round trip."""
    sock = getattr(dbapi_connection, "_sock", None)
    if sock is None:
        raise sa.exc.DisconnectionError("the connection was closed")
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError) as exc:
        raise sa.exc.DisconnectionError(f"the connection's socket is gone: {exc}") from exc
    if not readable:
        return
    try:
        dbapi_connection.ping(reconnect=False)
    except Exception as exc:
        raise sa.exc.DisconnectionError(f"the server dropped the connection: {exc}") from exc


def _release_named_locks(dbapi_connection: Any, record: Any) -> None:
    # GET_LOCK locks belong to the connection, not the transaction: give them back before another user of the
    # pool gets the connection. An invalidated connection has none left (the server released them).
    if dbapi_connection is None or not record.info.pop(NAMED_LOCKS_INFO, False):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("DO RELEASE_ALL_LOCKS()")
    finally:
        cursor.close()


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
