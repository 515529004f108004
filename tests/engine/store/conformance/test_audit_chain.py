"""The audit log is a hash chain: a fresh chain verifies, an edited or deleted entry is found, concurrent
appends keep one valid chain, and an export verifies offline with the pure-Python checker.

Tampering goes below the protocol (`sql_support`, `redis_support`), as an operator with database access would.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from engine.store import Store, open_store
from engine.store.audit_chain import GENESIS, export_line, verify_lines
from tests.engine.store import redis_support, sql_support


def _below(store: Store) -> Any:
    """The test support that reaches below the protocol on the store's backend."""
    return redis_support if store.backend == "redis" else sql_support


def _fill(store: Store, count: int = 5) -> list[int]:
    ids = []
    for n in range(count):
        entry = store.audit.append(
            f"user{n}", "keys.create", resource_type="keys", resource_id=f"k{n}", details={"n": n, "x": 1.5}
        )
        assert entry.id is not None
        ids.append(entry.id)
    return ids


def _export_lines(store: Store) -> list[str]:
    return [export_line(entry) for entry in store.audit.entries(batch=2)]


def test_an_empty_and_a_fresh_chain_verify(store: Store) -> None:
    empty = store.audit.verify()
    assert (empty.ok, empty.checked, empty.head_hash) == (True, 0, GENESIS)

    ids = _fill(store)
    entries = list(store.audit.entries())
    assert [e.id for e in entries] == ids
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    result = store.audit.verify()
    assert (result.ok, result.checked, result.broken_id, result.head_hash) == (
        True,
        5,
        None,
        entries[-1].hash,
    )


@pytest.mark.parametrize("column", ["details", "actor"])
def test_an_edited_entry_is_found_at_that_entry(store: Store, column: str) -> None:
    ids = _fill(store)
    _below(store).edit_audit_entry(store, ids[2], **{column: {"n": 99} if column == "details" else "mallory"})

    result = store.audit.verify()
    assert (result.ok, result.broken_id, result.problem, result.checked) == (False, ids[2], "hash", 2)
    assert f"entry {ids[2]}" in result.message and "edited" in result.message


def test_an_attempt_on_a_resource_of_a_huge_id_is_audited_with_the_id_cut(store: Store) -> None:
    # A request naming a 5,000-character workflow id was answered, and its audit entry refused by PostgreSQL's
    # column length and lost.
    action = "PUT /v1/workflows/{workflow_id}"
    entry = store.audit.append("admin", action, resource_id="w" * 5000, outcome="denied")
    (stored,) = [e for e in store.audit.entries() if e.id == entry.id]
    assert stored.resource_id == "w" * 199 + "\u2026" and stored.details == {"cut": {"resource_id": 5000}}
    assert store.audit.verify().ok
    assert [e.id for e in store.audit.list(resource_id=stored.resource_id)] == [entry.id]


def test_a_deleted_entry_breaks_the_link_of_the_next(store: Store) -> None:
    ids = _fill(store)
    _below(store).delete_audit_entry(store, ids[1])

    result = store.audit.verify()
    assert (result.ok, result.broken_id, result.problem) == (False, ids[2], "prev_hash")
    assert "deleted" in result.message


def test_concurrent_appends_from_several_stores_keep_one_chain(store: Store) -> None:
    reopen = redis_support.open_same if store.backend == "redis" else open_store
    stores = [store, *(reopen(store.connect_url) for _ in range(3))]
    errors: list[BaseException] = []

    def append_many(s: Store, n: int) -> None:
        try:
            for i in range(15):
                s.audit.append(f"writer{n}", "runs.create", resource_id=str(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append_many, args=(s, n)) for n, s in enumerate(stores + stores[:2])]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores[1:]:
            s.close()
    assert errors == []
    result = store.audit.verify()
    assert (result.ok, result.checked) == (True, 15 * len(threads)), result.message


def test_an_export_verifies_offline_and_a_changed_line_does_not(store: Store) -> None:
    _fill(store)
    lines = _export_lines(store)
    assert verify_lines(lines).ok
    assert verify_lines(lines).head_hash == store.audit.verify().head_hash

    data = json.loads(lines[3])
    data["outcome"] = "denied"
    tampered = [*lines[:3], json.dumps(data), *lines[4:]]
    result = verify_lines(tampered)
    assert (result.ok, result.broken_id, result.problem) == (False, data["id"], "hash")
    dropped = verify_lines([*lines[:1], *lines[2:]])
    assert (dropped.ok, dropped.problem) == (False, "prev_hash")
    # An export that starts mid-chain verifies only when its first link is taken on trust.
    assert not verify_lines(lines[2:]).ok
    assert verify_lines(lines[2:], start_hash=None).ok


def test_entries_since_a_time_start_there(store: Store) -> None:
    first = store.audit.append("a", "x")
    later = store.audit.append("b", "y", at=first.at + timedelta(hours=1))
    assert [e.id for e in store.audit.entries(since=first.at + timedelta(minutes=1))] == [later.id]
