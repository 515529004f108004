"""`RedisStore`: the Redis backend of the `Store` protocol (ADR 024).

Built: the repositories named in `BUILT` (every repository of the protocol). A repository named in `MISSING`
would be a placeholder whose every method raises `NotImplementedError` naming it (for a repository the protocol
gains before the backend has it). `open_store("redis://...")` opens it (`engine.store.open`) once the server is
found durable (`engine.store.redis.durability`, or `?durability=relaxed`); `RedisStore.connect(url)` builds it
without that check.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from engine.store.redis.api_keys import RedisApiKeys
from engine.store.redis.audit import RedisAudit
from engine.store.redis.base import Keys
from engine.store.redis.bulk import RedisBulk
from engine.store.redis.collab import RedisCollab
from engine.store.redis.events import RedisEvents
from engine.store.redis.node_runs import RedisNodeRuns
from engine.store.redis.plugins import RedisPlugins
from engine.store.redis.reports import RedisReports
from engine.store.redis.runs import RedisRuns
from engine.store.redis.secrets import RedisSecrets
from engine.store.redis.shares import RedisShares
from engine.store.redis.tenants import RedisTenants
from engine.store.redis.users import RedisUsers
from engine.store.redis.webhooks import RedisWebhooks
from engine.store.redis.workflows import RedisWorkflows

#: The key prefix of an installation whose URL names none.
DEFAULT_PREFIX = "rayweave"

#: The repositories of the `Store` protocol that the Redis backend does not have yet.
MISSING: tuple[str, ...] = ()

UNDER_CONSTRUCTION = "the Redis backend is under construction"

#: The repositories it has.
BUILT = (
    "workflows",
    "runs",
    "node_runs",
    "events",
    "plugins",
    "tenants",
    "secrets",
    "collab",
    "users",
    "api_keys",
    "shares",
    "audit",
    "reports",
    "bulk",
    "webhooks",
)


class NotBuilt:
    """Stands for a repository the Redis backend does not have yet: every method raises `NotImplementedError`
    naming it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise NotImplementedError(
                f"{UNDER_CONSTRUCTION}: store.{self._name}.{method}() is not implemented yet (built: "
                f"{', '.join(BUILT)}; docs/adr/024-redis-store.md)"
            )

        return refuse


def split_url(url: str) -> tuple[str, str]:
    """The URL the Redis client opens (`redis://[:password@]host:port/db`, `rediss://` for TLS) and the key
    prefix named by its `?prefix=` (default `rayweave`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a Redis URL: {parts.scheme}://...; use redis://HOST:PORT/DB")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix"), DEFAULT_PREFIX)
    if not prefix or any(ch in prefix for ch in "*?[]\\ "):
        raise ValueError(f"Redis key prefix {prefix!r}: use letters, digits, '-', '_', ':' or '.'")
    # `durability` is `open_store`'s (engine.store.redis.durability), not the client's.
    rest = urlencode([(key, value) for key, value in query if key not in ("prefix", "durability")])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisStore:
    """The persistent state of an installation in Redis (the repositories of `BUILT`: see the module docstring).

    Thread-safe: the client keeps a pool of connections, and every change that must be atomic is one Lua script.
    """

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, *, url: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self._url = url
        keys = Keys(prefix)
        self.workflows = RedisWorkflows(client, keys)
        self.runs = RedisRuns(client, keys)
        self.node_runs = RedisNodeRuns(client, keys)
        self.events = RedisEvents(client, keys)
        self.plugins = RedisPlugins(client, keys)
        self.tenants = RedisTenants(client, keys)
        self.secrets = RedisSecrets(client, keys)
        self.collab = RedisCollab(client, keys)
        self.users = RedisUsers(client, keys)
        self.api_keys = RedisApiKeys(client, keys)
        self.shares = RedisShares(client, keys)
        self.audit = RedisAudit(client, keys)
        self.reports = RedisReports(client, keys)
        self.bulk = RedisBulk(client, keys)
        self.webhooks = RedisWebhooks(client, keys)
        for name in MISSING:
            setattr(self, name, NotBuilt(name))

    @classmethod
    def connect(cls, url: str) -> RedisStore:
        """A store on the Redis server of `url` (`redis://HOST:PORT/DB?prefix=NAME`). Connects lazily: the first
        command (or `ping()`) finds out whether the server answers. Checks nothing of the server's durability
        (`open_store` does)."""
        client_url, prefix = split_url(url)
        client = redis.Redis.from_url(
            client_url,
            decode_responses=True,
            socket_timeout=30,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        return cls(client, prefix, url=url)

    @property
    def backend(self) -> str:
        """`"redis"`."""
        return "redis"

    @property
    def url(self) -> str:
        """The store's URL with any password hidden."""
        parts = urlsplit(self.connect_url)
        if parts.password is None:
            return self.connect_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def connect_url(self) -> str:
        """The URL, password and prefix included, that opens this same store in another process."""
        if self._url:
            return self._url
        kwargs = self.client.connection_pool.connection_kwargs
        auth = f":{kwargs['password']}@" if kwargs.get("password") else ""
        host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
        return f"redis://{auth}{host}:{port}/{db}?prefix={self.prefix}"

    def durability_problems(self) -> list[str]:
        """What in the server's configuration would lose acknowledged writes (`engine.store.redis.durability`);
        empty when it is durable as ADR 024 asks."""
        from engine.store.redis.durability import server_durability_problems

        return server_durability_problems(self.client)

    def ping(self) -> None:
        """`PING`; raises the client's `redis.exceptions.ConnectionError` when the server does not answer."""
        self.client.ping()

    def close(self) -> None:
        """Close every pooled connection."""
        self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
