"""The Redis server of the store tests (127.0.0.1:6379, no auth) and a store of a test's own on it.

Each store gets a key prefix of its own (`rwtest-<random>`); afterwards every key under it is deleted, so tests
share the server (and run in parallel) without meeting, and leave nothing behind. Without a reachable server the
test is skipped on a developer machine and fails in CI (`.ci/run` starts the server when it is down).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from engine.store.redis import RedisStore

#: The server the tests use; database 0, keys under a prefix per store.
REDIS_SERVER = "redis://127.0.0.1:6379/0"

#: The query every test store's URL carries: the test server may run without an append-only file, which
#: `open_store` refuses unless told (ADR 024, "Durability"); `test_store_redis.py` tests that refusal.
RELAXED = "durability=relaxed"


@contextmanager
def redis_store() -> Iterator[RedisStore]:
    """An empty Redis store under a fresh key prefix; its keys are deleted when the block ends."""
    prefix = f"rwtest-{uuid.uuid4().hex[:12]}"
    store = RedisStore.connect(f"{REDIS_SERVER}?prefix={prefix}&{RELAXED}")
    try:
        store.ping()
    except redis.exceptions.ConnectionError as exc:
        store.close()
        message = f"Redis is not reachable at {REDIS_SERVER}: {exc}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message} (CI runs the Redis tests; .ci/run starts the server when it is down)")
        pytest.skip(message)
    try:
        yield store
    finally:
        delete_keys(store.client, prefix)
        store.close()


def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix` (`SCAN`, never `KEYS`: the server stays responsive); how many."""
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) == 500:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def open_same(url: str) -> RedisStore:
    """Another store on the Redis store at `url`, opened as every other process opens it (`open_store`)."""
    from engine.store import open_store

    store = open_store(url)
    assert isinstance(store, RedisStore)
    return store


def edit_audit_entry(store: RedisStore, entry_id: int, **values: Any) -> None:
    """Change fields of one stored audit entry behind the store's back (an operator tampering with the log)."""
    client: Any = store.client
    client.hset(store.audit.keys("audit", entry_id), mapping=store.audit.codec.fields(values))


def delete_audit_entry(store: RedisStore, entry_id: int) -> None:
    """Delete one stored audit entry, and its place in every index, behind the store's back."""
    client: Any = store.client
    keys = store.audit.keys
    entry = client.hgetall(keys("audit", entry_id))
    client.delete(keys("audit", entry_id))
    indexes = [keys("audit"), keys("audit", "at"), keys("audit", "actor", entry["actor"])]
    indexes += [keys("audit", "action", entry["action"]), keys("audit", "rid", entry["resource_id"])]
    for index in indexes:
        client.zrem(index, str(entry_id))


#: Where each table's records lie on Redis (a `SCAN` pattern under the store's prefix; only hashes count).
RECORD_KEYS = {"webhook_subscriptions": "webhook:*", "webhook_deliveries": "webhook-delivery:*"}


def stored_rows(store: RedisStore, table: str) -> list[dict[str, str]]:
    """The records of `table` as the server holds them (every hash under the table's key pattern)."""
    client: Any = store.client
    keys = [key for key in client.scan_iter(match=f"{store.prefix}:{RECORD_KEYS[table]}", count=1000)]
    return [client.hgetall(key) for key in sorted(keys) if client.type(key) == "hash"]
