"""The Redis backend of the store (ADR 024): `RedisStore` has the repositories named in `store.BUILT` (every one
of the protocol); `open_store` opens `redis://` URLs whose server is durable (`durability`).

One module per repository (`workflows`, `runs`, `node_runs`, `events`, `plugins`, `tenants`, `users`,
`api_keys`, `shares`, `secrets`, `collab`, ...), the record codec (`codec`), the key names (`base`) and the server's durability check (`durability`).
Importing this package imports the `redis` client library and does nothing else.
"""

from __future__ import annotations

from engine.store.redis.store import UNDER_CONSTRUCTION, RedisStore, split_url

__all__ = ["UNDER_CONSTRUCTION", "RedisStore", "split_url"]
