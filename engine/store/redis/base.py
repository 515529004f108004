"""What every Redis repository shares: the client, the key names and the Lua scripts it runs.

Key names (ADR 024): everything an installation stores lies under one prefix (`rayweave` by default, the URL's
`?prefix=`), so several installations, or the tests, share a server without meeting. Strings that come from
users (owners, idempotency keys) sit at the end of a key, or are length-prefixed where two of them meet, so no
two different records can map to one key.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.commands.core import Script


class Keys:
    """The key names of one installation (`prefix`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: str | int) -> str:
        """`prefix:part:part...`."""
        return ":".join([self.prefix, *map(str, parts)])

    @staticmethod
    def pair(first: str, second: str) -> str:
        """Two user-given strings in one key part, unambiguously (`len:first:second`, the length in UTF-8
        bytes, as a Lua script counts it)."""
        return f"{len(first.encode())}:{first}:{second}"


class RedisRepository:
    """Base of the Redis repositories: one client (thread-safe: a connection pool) and the installation's keys."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        # Typed Any: redis-py types every reply as bytes | str | Awaitable (its sync and async clients share
        # their annotations); with `decode_responses=True` (`RedisStore.connect`) every reply is text.
        self.client: Any = client
        self.keys = keys

    def script(self, source: str) -> Script:
        """A Lua script run with `EVALSHA` (loaded on first use; Redis runs each one atomically)."""
        script: Script = self.client.register_script(source)
        return script

    @staticmethod
    def reply(value: Any) -> list[Any]:
        """A script's table reply as a list (Redis gives a Lua table back as a list)."""
        return list(value) if isinstance(value, list | tuple) else [value]


def flat(fields: dict[str, str]) -> list[str]:
    """`{a: 1, b: 2}` as `[a, 1, b, 2]` (what `HSET` and a script's ARGV take)."""
    return [item for pair in fields.items() for item in pair]


def as_dict(pairs: list[Any]) -> dict[str, str]:
    """A flat `[field, value, ...]` reply (a script's `HGETALL`) as a dict."""
    return dict(zip(pairs[::2], pairs[1::2], strict=True))
