"""`open_store`: a database engine (`engine.store.db`), its schema brought to the newest version
(`engine.store.migrate`), and the SQL store on it.

It sits above both modules it joins, so that neither imports the other back. Opening a store whose database is
at the newest schema already does not import Alembic (see `engine.store.migrate`).
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from engine.store.db import DatabaseOptions, create_db_engine, make_sqlite_folder, normalize_url
from engine.store.migrate import upgrade_database
from engine.store.store import SqlStore

__all__ = ["open_store"]


def open_store(url: str | URL, *, upgrade: bool = True, options: DatabaseOptions | None = None) -> SqlStore:
    """Open the store at `url` (SQLite file or PostgreSQL), bringing its schema to the current version first.

    `upgrade=False` skips the Alembic upgrade (for callers that manage migrations themselves, e.g. `rayweave db
    upgrade` in a deployment pipeline). The parent directory of a SQLite file is created when missing.
    """
    parsed = normalize_url(url)
    make_sqlite_folder(parsed)
    engine = create_db_engine(parsed, options)
    if upgrade:
        upgrade_database(engine)
    return SqlStore(engine)
