"""Alembic environment of the store: runs migrations on the engine handed over by `engine.store.migrate`."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel.sql.sqltypes import AutoString

from engine.store.db import create_db_engine
from engine.store.models import metadata

# Any constant works; it only has to be the same for every rayweave process migrating the same database.
_PG_MIGRATION_LOCK = 0x7261795765617665


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # SQLModel's AutoString is plain VARCHAR; render it as such so migrations do not import sqlmodel.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _sqlite_foreign_keys(connection: sa.Connection, on: bool) -> None:
    # On the DB-API connection: through SQLAlchemy the statement would begin a transaction first, and SQLite
    # ignores this pragma inside one.
    raw: Any = connection.connection.driver_connection
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(connection: sa.Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        from engine.store.errors import MigrationError

        raise MigrationError(
            f"the migration would leave rows whose foreign keys point nowhere ({broken[:5]}); nothing was "
            "changed: report this as a bug of the migration"
        )


def _run(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a SQLite table to change its constraints and drops the old one; with foreign keys
        # on, that drop would delete every row referencing it (ON DELETE CASCADE: a run's events and node
        # runs). So they are off while migrating, as SQLite's ALTER TABLE guide says, and checked at the end.
        _sqlite_foreign_keys(connection, on=False)
    try:
        _migrate(connection, check_foreign_keys=sqlite)
        # Ended here, not by the caller: the pragma below is ignored until the transaction is over.
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)


def _migrate(connection: sa.Connection, *, check_foreign_keys: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two replicas starting together must not both create the tables.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        context.run_migrations()
        if check_foreign_keys:
            _check_foreign_keys(connection)


def run_migrations_online() -> None:
    """Run the migrations on the engine (or URL) in the Alembic config."""
    config = context.config
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no database given: call engine.store.migrate.upgrade_database(engine)")
        engine = create_db_engine(url)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `rayweave db upgrade`")
run_migrations_online()
