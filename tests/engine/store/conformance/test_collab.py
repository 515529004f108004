"""Shared workflow documents' update logs over every backend (issue 23): numbering without gaps under
concurrent appenders, put-if-absent start, compare-and-set rebase, compaction, cascade on delete."""

from __future__ import annotations

import threading

import pytest

from engine.store import NotFoundError, Store
from nodes.ids import WorkflowId


def _workflow(store: Store) -> WorkflowId:
    return store.workflows.create({"name": "w", "nodes": {}}).workflow_id


def test_start_is_put_if_absent_and_the_log_reads_back_in_order(store: Store) -> None:
    wid = _workflow(store)
    assert store.collab.get(wid) is None
    first = store.collab.start(wid, base_version=1, update=b"\x01first")
    assert (first.base_version, first.last_seq) == (1, 1)
    # A second server starting the same document gets the existing one; its update is not stored.
    assert store.collab.start(wid, base_version=1, update=b"\x01other") == first
    assert store.collab.append(wid, b"\x00\xffbinary") == 2
    assert store.collab.read(wid) == [(1, b"\x01first"), (2, b"\x00\xffbinary")]
    assert store.collab.read(wid, after=1) == [(2, b"\x00\xffbinary")]


def test_concurrent_appends_are_numbered_without_gaps(store: Store) -> None:
    wid = _workflow(store)
    store.collab.start(wid, base_version=1, update=b"0")
    seqs: list[int] = []
    lock = threading.Lock()

    def append(i: int) -> None:
        for j in range(10):
            seq = store.collab.append(wid, f"{i}-{j}".encode())
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(2, 42))
    assert [seq for seq, _ in store.collab.read(wid)] == list(range(1, 42))


def test_rebase_moves_the_base_once_with_its_update(store: Store) -> None:
    wid = _workflow(store)
    store.collab.start(wid, base_version=1, update=b"0")
    assert store.collab.rebase(wid, expected_base=1, new_base=3, update=b"merge") == 2
    # Another server that saw version 1 too does not record the same change twice.
    assert store.collab.rebase(wid, expected_base=1, new_base=3, update=b"merge again") is None
    assert store.collab.rebase(wid, expected_base=3, new_base=4, update=None) == 0
    state = store.collab.get(wid)
    assert state is not None and (state.base_version, state.last_seq) == (4, 2)
    assert store.collab.read(wid) == [(1, b"0"), (2, b"merge")]


def test_compaction_replaces_a_prefix_and_numbering_goes_on(store: Store) -> None:
    wid = _workflow(store)
    store.collab.start(wid, base_version=1, update=b"a")
    for data in (b"b", b"c", b"d"):
        store.collab.append(wid, data)
    assert store.collab.compact(wid, upto=3, update=b"abc") == 2
    assert store.collab.read(wid) == [(3, b"abc"), (4, b"d")]
    assert store.collab.read(wid, after=3) == [(4, b"d")]
    assert store.collab.append(wid, b"e") == 5


def test_missing_documents_and_workflows_are_named(store: Store) -> None:
    wid = _workflow(store)
    with pytest.raises(NotFoundError, match="no shared document"):
        store.collab.append(wid, b"x")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.collab.start(WorkflowId("missing"), base_version=1, update=b"x")
    assert store.collab.delete(wid) is False
    store.collab.start(wid, base_version=1, update=b"x")
    assert store.collab.delete(wid) is True
    assert store.collab.get(wid) is None and store.collab.read(wid) == []
