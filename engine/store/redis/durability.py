"""Whether a Redis server keeps what the store writes (ADR 024, "Durability"): the append-only file on, fsync not
left to the operating system, and no eviction. `open_store` refuses a server that fails this
(`engine.store.errors.DurabilityError`, naming each setting) unless the URL says `?durability=relaxed`, for a
cache or a test server used knowingly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis

from engine.store.errors import DurabilityError

__all__ = ["DURABILITY_MODES", "DurabilityError", "durability_mode", "durability_problems"]

#: The values of a Redis URL's `?durability=`: `strict` (the default) refuses a server that would lose
#: acknowledged writes, `relaxed` accepts it.
DURABILITY_MODES = ("strict", "relaxed")


def durability_mode(url: str) -> str:
    """The URL's `?durability=` (`strict` when absent); any other value is refused naming the choices."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    mode = next((value for key, value in query if key == "durability"), "strict")
    if mode not in DURABILITY_MODES:
        raise ValueError(f"Redis URL: durability={mode!r}; use durability=strict (the default) or relaxed")
    return mode


def durability_problems(info: Mapping[str, Any], appendfsync: str | None) -> list[str]:
    """What in a server's `INFO persistence` and `INFO memory` (merged into `info`) and its `appendfsync` setting
    (None when `CONFIG GET` is not allowed, as on some managed services) would lose acknowledged writes; each
    problem says what to set. Empty: durable as ADR 024 asks."""
    problems = []
    if str(info.get("aof_enabled", "0")) != "1":
        problems.append(
            "the append-only file is off: a restart loses everything since the last snapshot; set "
            "`appendonly yes` (and `appendfsync always`, or `everysec` knowing a machine crash loses ~1 s)"
        )
    elif appendfsync == "no":
        problems.append(
            "appendfsync is `no`: the operating system decides when writes reach the disk; set "
            "`appendfsync always` (or `everysec`)"
        )
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy!r}: Redis deletes records when memory runs out; set "
            "`maxmemory-policy noeviction` (writes then fail loudly instead)"
        )
    if str(info.get("aof_last_write_status", "ok")) != "ok":
        problems.append("the last write to the append-only file failed; check the server's disk and log")
    return problems


def server_durability_problems(client: redis.Redis) -> list[str]:
    """`durability_problems` of the server `client` talks to (two `INFO` sections and a `CONFIG GET`)."""
    info: dict[str, Any] = {**client.info("persistence"), **client.info("memory")}
    try:
        appendfsync: str | None = client.config_get("appendfsync").get("appendfsync")
    except redis.exceptions.ResponseError:  # CONFIG renamed or disabled
        appendfsync = None
    return durability_problems(info, appendfsync)
