"""Alembic environment of the store: runs migrations on the engine handed over by `engine.store.migrate`."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel.sql.sqltypes import AutoString

from engine.store.columns import is_mysql
from engine.store.db import create_db_engine
from engine.store.locks import hold_until_checkin
from engine.store.models import metadata
from engine.store.partitions import is_partition

# Any constant works; it only has to be the same for every rayweave process migrating the same database.
_PG_MIGRATION_LOCK = 0x7261795765617665


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # SQLModel's AutoString is plain VARCHAR; render it as such so migrations do not import sqlmodel.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # PostgreSQL's partitions of `events` and `node_runs` (migration 0010) are not tables of the models.
    return not (type_ == "table" and is_partition(name))


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


def _check_mysql_collation(connection: sa.Connection) -> None:
    # Tables take the database's default collation. MariaDB's and MySQL's defaults compare case-insensitively:
    # idempotency keys "A" and "a" (or user names) would then be one, unlike on SQLite and PostgreSQL.
    charset, collation = connection.execute(
        sa.text("SELECT @@character_set_database, @@collation_database")
    ).one()
    if charset == "utf8mb4" and str(collation).endswith("_bin"):
        return
    from engine.store.errors import MigrationError

    name = connection.execute(sa.text("SELECT DATABASE()")).scalar()
    raise MigrationError(
        f"the MariaDB/MySQL database {name!r} uses character set {charset} with collation {collation}; rayweave "
        "needs utf8mb4 with a binary collation (case-sensitive comparisons, as on PostgreSQL). Create it with "
        f"`CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin` (MySQL: utf8mb4_0900_bin), "
        f"or change an empty one with `ALTER DATABASE {name} CHARACTER SET utf8mb4 COLLATE "
        "utf8mb4_nopad_bin`, then run `rayweave db upgrade` again"
    )


def _drop_json_valid_checks(connection: sa.Connection) -> None:
    # MariaDB's JSON is LONGTEXT with an automatic CHECK (JSON_VALID(column)), and JSON_VALID refuses documents
    # nested 32 levels deep or more, where rayweave accepts 64 (engine.jsonlimits): an accepted run's inputs
    # would fail to insert. Every value is serialized by SQLAlchemy's JSON type, so the check adds nothing. It
    # is the column's own constraint, so the column is redefined without it (the same LONGTEXT, nullability).
    columns = connection.execute(
        sa.text(
            "SELECT c.table_name, c.column_name, c.is_nullable FROM information_schema.check_constraints k "
            "JOIN information_schema.columns c ON c.table_schema = k.constraint_schema "
            "AND c.table_name = k.table_name AND c.column_name = k.constraint_name "
            "WHERE k.constraint_schema = DATABASE() AND k.level = 'Column' "
            "AND k.check_clause LIKE 'json\\_valid(%'"
        )
    ).all()
    for table, column, nullable in columns:
        null = "NULL" if nullable == "YES" else "NOT NULL"
        connection.exec_driver_sql(
            f"ALTER TABLE `{table}` MODIFY `{column}` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin {null}"
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
        include_name=_include_name,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two replicas starting together must not both create the tables.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        elif is_mysql(connection.dialect):
            # The same on MariaDB/MySQL with a named lock, released when the connection returns to the pool.
            # Their DDL commits at once: a migration that fails half-way leaves what it created so far.
            hold_until_checkin(connection, "migrations", timeout_s=600)
            _check_mysql_collation(connection)
        context.run_migrations()
        if connection.dialect.name == "mariadb":
            _drop_json_valid_checks(connection)
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
