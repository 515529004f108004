"""Per-owner quotas of queued and running runs (issue 18): refused at the quota, strict under concurrency."""

from __future__ import annotations

import threading

import pytest

from engine.store import RunQuotaExceededError, Store
from nodes.states import RunStatus

DOC = {"format": "rayweave.workflow/1", "name": "q", "nodes": {}, "outputs": {}}


def test_the_quota_counts_queued_and_running_runs_of_the_owner(store: Store) -> None:
    first = store.runs.create(document=DOC, owner="alice", max_active=2).run
    store.runs.create(document=DOC, owner="alice", max_active=2)
    store.runs.create(document=DOC, owner="bob", max_active=2)  # another owner's budget
    with pytest.raises(RunQuotaExceededError, match="'alice' has 2 run\\(s\\) queued or running") as caught:
        store.runs.create(document=DOC, owner="alice", max_active=2)
    assert (caught.value.active, caught.value.limit) == (2, 2)
    assert len(store.runs.list(owner="alice").items) == 2  # nothing recorded by the refusal
    store.runs.update_status(first.id, RunStatus.RUNNING)
    store.runs.update_status(first.id, RunStatus.SUCCEEDED)
    store.runs.create(document=DOC, owner="alice", max_active=2)  # a finished run frees its place
    # An idempotent repeat is not a new run: it is answered even at the quota.
    keyed = store.runs.create(document=DOC, owner="carol", idempotency_key="k", max_active=1)
    again = store.runs.create(document=DOC, owner="carol", idempotency_key="k", max_active=1)
    assert again.run.id == keyed.run.id and not again.created


def test_concurrent_creations_never_exceed_the_quota(store: Store) -> None:
    created: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def submit() -> None:
        start.wait()
        try:
            run = store.runs.create(document=DOC, owner="dora", max_active=3).run
            with lock:
                created.append(run.id)
        except RunQuotaExceededError:
            with lock:
                refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(created), len(refused)) == (3, 5)
    assert len(store.runs.list(owner="dora").items) == 3
