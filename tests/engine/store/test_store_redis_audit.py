"""The audit log on Redis (ADR 024) against SQLite's: the same listings for every filter, the same entries from a
time on (entry times given out of order included), and what only a chain head kept apart from the entries adds:
a deleted newest entry is found once the next one is appended, and an append over a rewound head is refused. The
chain's own conformance module (`conformance/test_audit_chain.py`) runs on Redis through
`tests/engine/store/conftest.py`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from engine.store import Store
from engine.store.audit_chain import GENESIS
from engine.store.errors import AuditChainError
from engine.store.redis import RedisStore
from tests.engine.store.redis_support import delete_audit_entry, redis_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def rstore() -> Iterator[RedisStore]:
    with redis_store() as made:
        yield made


def _audit_answers(store: Store) -> list[object]:
    """Every combination of listing filters, paged by 3, and `entries(since=...)`, over the same 30 entries
    whose times are not in the order they were appended."""
    for i in range(30):
        store.audit.append(
            ("ada", "bob", "cy")[i % 3],
            ("x.create", "x.delete")[i % 2],
            resource_type=("workflow", "run")[i % 4 == 0],
            resource_id=f"r{i % 5}",
            outcome=("ok", "denied")[i % 7 == 0],
            details={"i": i, "f": 2.0},
            at=T0 + timedelta(minutes=(i * 7) % 11),
        )
    seen: list[object] = []
    for actor in (None, "bob"):
        for action in (None, "x.delete"):
            for resource_type, resource_id in ((None, None), ("workflow", None), (None, "r2"), ("run", "r0")):
                for since in (None, T0 + timedelta(minutes=6)):
                    pages, before = [], None
                    while True:
                        page = store.audit.list(
                            actor=actor,
                            action=action,
                            resource_type=resource_type,
                            resource_id=resource_id,
                            since=since,
                            before_id=before,
                            limit=3,
                        )
                        pages.append([(e.id, e.actor, e.at, e.details) for e in page])
                        if len(page) < 3:
                            break
                        before = page[-1].id
                    seen.append(((actor, action, resource_type, resource_id, since), pages))
    for minutes in (0, 6, 10, 11):
        entries = store.audit.entries(since=T0 + timedelta(minutes=minutes), batch=4)
        seen.append([(e.id, e.prev_hash, e.hash) for e in entries])
    seen.append(store.audit.verify().as_dict())
    return seen


def test_audit_listings_and_entries_match_sqlite(rstore: RedisStore, sqlite_store: Store) -> None:
    # Redis reads the smallest index the filters name and checks the rest entry by entry, and finds where a time
    # starts from a time index (ADR 024): the answers, hashes included, must be the SQL store's.
    assert _audit_answers(cast(Store, rstore)) == _audit_answers(sqlite_store)


def test_a_deleted_newest_entry_is_found_at_the_next_append(rstore: RedisStore) -> None:
    # The SQL store chains a new entry to whatever entry is last; Redis keeps the head apart from the entries,
    # so the next entry still links to the deleted one and the gap shows.
    first = rstore.audit.append("a", "x")
    last = rstore.audit.append("a", "y")
    assert first.id is not None and last.id is not None
    delete_audit_entry(rstore, last.id)
    assert rstore.audit.verify().ok  # nothing after it yet: a truncated chain looks whole
    after = rstore.audit.append("a", "z")
    result = rstore.audit.verify()
    assert (result.ok, result.broken_id, result.problem) == (False, after.id, "prev_hash")


def test_an_append_over_a_rewound_head_is_refused_naming_what_to_do(rstore: RedisStore) -> None:
    rstore.audit.append("a", "x")
    rstore.client.hset(rstore.audit.keys("audit", "head"), mapping={"id": "0", "hash": GENESIS})
    with pytest.raises(AuditChainError, match=r"audit entry 1 exists already .* run `rayweave audit verify`"):
        rstore.audit.append("a", "y")
