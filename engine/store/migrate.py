"""Running the Alembic migrations that ship inside the package (`engine/store/migrations`).

No `alembic.ini` is needed: the configuration is built in code, so `rayweave db upgrade` works from any
directory and from an installed wheel. Opening a store whose database is at `HEAD_REVISION` already (every
command after the first) reads the version with one query and never imports Alembic (about 0.2 s of a CLI
command's start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.store.db import create_db_engine, make_sqlite_folder
from engine.store.errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The newest migration shipped with this version (a test checks it is Alembic's head).
HEAD_REVISION = "0010"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic `Config` pointing at the packaged migrations; `engine` is handed to `env.py` directly."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this version of rayweave (as Alembic finds it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise MigrationError("no migrations found in the package; reinstall rayweave")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine: Engine, revision: str = "head") -> str | None:
    """Apply every pending migration up to `revision`; a database already there is left untouched.

    Returns the revision the database is at afterwards. Safe to call from several processes at once on
    PostgreSQL (the migration takes an advisory lock); on SQLite the database file lock serializes them.
    """
    if revision == "head" and _recorded_revision(engine) == HEAD_REVISION:
        return HEAD_REVISION
    from alembic import command

    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise MigrationError(
            f"cannot connect to the database {url}: {exc.orig}; check that the database exists (create it "
            "first: docs/guides/storage-backends.md) and that this machine may reach it; nothing was changed"
        ) from exc
    try:
        command.upgrade(alembic_config(engine), revision)
    except sa.exc.SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        trace = (
            "MariaDB and MySQL commit DDL at once, so a failed migration may have left part of its changes: "
            "restore the backup taken before the upgrade"
            if engine.dialect.name in ("mysql", "mariadb")
            else "each migration runs in a transaction, so a failed one leaves no trace"
        )
        raise MigrationError(
            f"upgrading the database {url} to {revision} failed: {exc}; fix the cause and rerun "
            f"`rayweave db upgrade` ({trace})"
        ) from exc
    return current_revision(engine)


def _recorded_revision(engine: Engine) -> str | None:
    """The revision in the database's `alembic_version` table, read without Alembic (None when there is none)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.SQLAlchemyError:  # no such table: an empty database
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


@dataclass(frozen=True)
class UpgradeOutcome:
    """What `upgrade_at` did: the database (password hidden) and its revision before and after."""

    url: str
    before: str | None
    after: str | None


def upgrade_at(url: str) -> UpgradeOutcome:
    """Bring the database at `url` to the newest schema (`rayweave db upgrade`), creating a SQLite file's folder
    when missing. A bad URL raises `ValueError` (or `ImportError` for a missing driver); a failed upgrade
    `MigrationError` or one of `errors.backend_errors()`."""
    engine = create_db_engine(url)
    try:
        make_sqlite_folder(engine.url)
        before = current_revision(engine)
        after = upgrade_database(engine)
    finally:
        engine.dispose()
    return UpgradeOutcome(engine.url.render_as_string(hide_password=True), before, after)
