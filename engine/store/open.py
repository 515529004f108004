"""`open_store`: the store at a URL. For SQL URLs, a database engine (`engine.store.db`), its schema brought to
the newest version (`engine.store.migrate`), and the SQL store on it; for redis:// and rediss:// URLs, the Redis
store (`engine.store.redis`), once its server is found durable (ADR 024, "Durability").

It sits above the modules it joins, so that none of them imports another back. Opening a store whose database
is at the newest schema already does not import Alembic (see `engine.store.migrate`), and opening a SQL store
does not import the Redis client.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from engine.store.db import DatabaseOptions, create_db_engine, make_sqlite_folder, normalize_url
from engine.store.migrate import upgrade_database
from engine.store.store import SqlStore

if TYPE_CHECKING:
    from engine.store.protocol import Store

__all__ = ["is_redis_url", "open_store"]


def is_redis_url(url: str | URL) -> bool:
    """Whether `url` names a Redis server (`redis://` or `rediss://`)."""
    return isinstance(url, str) and url.split(":", 1)[0].lower() in ("redis", "rediss")


def open_store(
    url: str | URL,
    *,
    upgrade: bool = True,
    options: DatabaseOptions | None = None,
    workflows_dir: str | Path | None = None,
) -> Store:
    """Open the store at `url` (SQLite file, PostgreSQL, MariaDB/MySQL, Redis), bringing a SQL schema to the
    current version first.

    `upgrade=False` skips the Alembic upgrade (for callers that manage migrations themselves, e.g. `rayweave db
    upgrade` in a deployment pipeline). The parent directory of a SQLite file is created when missing. With
    `workflows_dir`, workflows and their versions are files in that directory (`engine.store.files_store`; SQL
    stores only). A Redis server that would lose acknowledged writes is refused (`DurabilityError`) unless
    the URL says `?durability=relaxed` (`engine.store.redis.durability`).
    """
    if is_redis_url(url):
        return _open_redis(str(url), workflows_dir=workflows_dir)
    return open_sql_store(url, upgrade=upgrade, options=options, workflows_dir=workflows_dir)


def open_sql_store(
    url: str | URL,
    *,
    upgrade: bool = True,
    options: DatabaseOptions | None = None,
    workflows_dir: str | Path | None = None,
) -> SqlStore:
    """`open_store` for the SQL URLs only, typed as the SQL store (for the few callers that read its tables
    directly: the JSON archive, the benches)."""
    if is_redis_url(url):
        raise ValueError("a SQL database URL is needed here, not a Redis one (redis://...)")
    parsed = normalize_url(url)
    make_sqlite_folder(parsed)
    engine = create_db_engine(parsed, options)
    if upgrade:
        upgrade_database(engine)
    if workflows_dir is not None:
        from engine.store.files_store import FilesStore

        return FilesStore(engine, workflows_dir)
    return SqlStore(engine)


def _open_redis(url: str, *, workflows_dir: str | Path | None) -> Store:
    """The Redis store at `url`, its server checked for durability unless the URL relaxes it."""
    if workflows_dir is not None:
        raise ValueError(
            "RAYWEAVE_WORKFLOWS_DIR (workflows as files) works with the SQL stores only; unset it to use Redis"
        )
    from engine.store.errors import DurabilityError
    from engine.store.redis.durability import durability_mode
    from engine.store.redis.store import RedisStore

    relaxed = durability_mode(url) == "relaxed"
    store = RedisStore.connect(url)
    try:
        problems = [] if relaxed else store.durability_problems()
    except BaseException:
        store.close()
        raise
    if problems:
        store.close()
        raise DurabilityError(f"the Redis server of {store.url}", problems)
    return store
