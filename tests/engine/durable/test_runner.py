"""Durable runs on the in-process executor: what is recorded, and how a crashed run is resumed (no Ray)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.durable.runner import RESUME_BLOB
from engine.durable.stored import stored_outputs
from engine.store import Store
from engine.workflow import Workflow
from nodes.states import RunStatus
from tests.engine.durable import flows
from tests.engine.durable.crash import simulate_crash
from tests.engine.durable.flows import chain, executions
from tests.engine.store.sql_support import forget_node_attempts


@pytest.fixture
def runner(settings: Settings, any_store: Store) -> DurableRunner:
    """A durable runner on the in-process executor, on SQLite and on PostgreSQL."""
    return DurableRunner(settings, store=any_store, executor="local", heartbeat_s=0.1)


@pytest.fixture
def store(runner: DurableRunner) -> Store:
    """The runner's store."""
    return runner.store  # type: ignore[no-any-return]


def attempts(store: Store, run_id: str) -> list[tuple[str, int, str]]:
    return [(r.node_id, r.attempt, r.status) for r in store.node_runs.list(run_id)]


def test_a_durable_run_records_events_attempts_and_results(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    result = runner.run(chain(log), {"x": 1})
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    run = store.runs.get(result.run_id)
    assert run.status == "succeeded" and run.inputs == {"x": 1}
    assert run.document is not None and run.document["name"] == "durable-chain"
    assert run.started_at is not None and run.finished_at is not None and run.heartbeat_at is not None
    assert run.outputs == {"out": 6}
    rows = store.node_runs.list(result.run_id)
    assert [(r.node_id, r.attempt, r.status) for r in rows] == [
        ("a", 1, "succeeded"),
        ("b", 1, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    assert all(r.result_location == runner.results.location(result.run_id, r.node_id) for r in rows)
    assert all(r.node_type == "durable_t/slow_inc@1" for r in rows if r.node_id != "d")
    events = store.events.read(result.run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run.queued" and events[-1].type == "run.succeeded"
    assert stored_outputs(store, runner.results, result.run_id) == {"out": 6}
    # Anyone can follow the run from the store alone.
    again = runner.attach(result.run_id).result(timeout=5)
    assert again.outputs == {"out": 6} and again.status is RunStatus.SUCCEEDED
    assert [e.seq for e in runner.attach(result.run_id).events()] == [e.seq for e in events]


def test_a_runner_with_the_result_cache_answers_a_rerun_from_it(
    settings: Settings, any_store: Store, log: Path
) -> None:
    wf = flows.squares(log)
    first = DurableRunner(settings, store=any_store, executor="local", cache=True).run(wf, {"x": 3})
    assert first.outputs == {"out": 81} and executions(log) == {"s1": 1, "s2": 1}
    # A new runner, as in a new process: its memory level is empty and the disk level answers.
    runner = DurableRunner(settings, store=any_store, executor="local", cache=True)
    again = runner.run(wf, {"x": 3})
    assert again.status is RunStatus.SUCCEEDED and again.outputs == {"out": 81}
    assert executions(log) == {"s1": 1, "s2": 1}, "a cached node ran again"
    latest = any_store.node_runs.latest(again.run_id)
    assert latest["s2"].status == "cached" and latest["s2"].cache_hit
    # The stored run is complete: its output was written to the result store from the cache.
    assert stored_outputs(any_store, runner.results, again.run_id) == {"out": 81}
    assert runner.attach(again.run_id).result(timeout=5).outputs == {"out": 81}
    # Other inputs, other keys: the nodes run.
    assert runner.run(wf, {"x": 2}).outputs == {"out": 16}
    assert executions(log) == {"s1": 2, "s2": 2}


def test_a_run_launched_without_the_cache_runs_every_node_and_leaves_it_alone(
    settings: Settings, log: Path
) -> None:
    import pickle

    wf = flows.squares(log)
    runner = DurableRunner(settings, executor="local", cache=True)
    assert runner.run(wf, {"x": 3}).outputs == {"out": 81}
    forced = runner.run(wf, {"x": 3}, cache=False)
    assert forced.outputs == {"out": 81} and executions(log) == {"s1": 2, "s2": 2}
    assert {n.status.value for n in forced.nodes.values()} == {"succeeded"}
    # Nothing was written either: new inputs run uncached still run when the cache is used next.
    runner.run(wf, {"x": 5}, cache=False)
    assert runner.run(wf, {"x": 5}).outputs == {"out": 625}
    assert executions(log) == {"s1": 4, "s2": 4}
    # A resume keeps the run's choice.
    info = pickle.loads(runner.results.get_blob(forced.run_id, RESUME_BLOB))
    assert info["cache"] is False


def test_per_owner_caches_scope_content_keys_too(settings: Settings, log: Path) -> None:
    # `s` follows a node that is not deterministic: its key is made in the task from its input's content,
    # and must be scoped like the keys made before the run.
    wf = flows.read_then_square(log)
    runner = DurableRunner(settings, executor="local", cache=True, cache_per_owner=True)
    statuses = []
    for owner in ("alice", "alice", "bob"):
        result = runner.launch(wf, {"x": 4}, owner=owner).handle.result(timeout=20)
        assert result.outputs == {"out": 16}
        statuses.append(result.nodes["s"].status.value)
    assert statuses == ["succeeded", "cached", "succeeded"]
    assert executions(log) == {"r": 3, "s": 2}


def test_a_resume_reads_the_cache_in_the_scope_the_run_was_launched_in(
    settings: Settings, store: Store, log: Path
) -> None:
    # A server's runner scopes keys by owner; `rayweave runs resume` and a sweep resume with a plain runner.
    plain = DurableRunner(settings, store=store, executor="local", cache=True)
    server = DurableRunner(settings, store=store, executor="local", cache=True, cache_per_owner=True)
    run_id = server.launch(flows.squares(log), {"x": 3}, owner="alice").handle.result(timeout=20).run_id
    simulate_crash(store, server.results, run_id, running="s2", later=(), keep_result=False)

    handles: dict[str, Any] = {}
    assert recover(runner=plain, stale_after_s=5, handles=handles) == [run_id]
    result = handles[run_id].result(timeout=20)
    # Alice's own entries answer what the crash lost: nothing ran again.
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 81}
    assert executions(log) == {"s1": 1, "s2": 1}
    assert store.node_runs.latest(run_id)["s2"].status == "cached"
    assert stored_outputs(store, plain.results, run_id) == {"out": 81}


def test_a_resume_never_reads_entries_of_another_scope(
    settings: Settings, store: Store, log: Path, tmp_path: Path
) -> None:
    from engine.cache.result_cache import CacheConfig, ResultCache

    plain = DurableRunner(settings, store=store, executor="local", cache=True)
    plain.run(flows.squares(log), {"x": 3})  # fills the unscoped entries
    # Alice's run keeps its entries apart (another directory), so her scope has none in `plain`'s cache.
    own = ResultCache(CacheConfig(disk_dir=tmp_path / "server-cache"))
    server = DurableRunner(settings, store=store, executor="local", cache=own, cache_per_owner=True)
    run_id = server.launch(flows.squares(log), {"x": 3}, owner="alice").handle.result(timeout=20).run_id
    simulate_crash(store, server.results, run_id, running="s2", later=(), keep_result=False)

    handles: dict[str, Any] = {}
    assert recover(runner=plain, stale_after_s=5, handles=handles) == [run_id]
    assert handles[run_id].result(timeout=20).outputs == {"out": 81}
    # s2 ran again rather than coming from the unscoped entry of the same input.
    assert executions(log) == {"s1": 2, "s2": 3}
    assert store.node_runs.latest(run_id)["s2"].status == "succeeded"


def test_a_cached_fused_group_fills_the_stored_outputs(settings: Settings) -> None:
    # The optimizer fuses x -> y -> z into one task; the outputs read two of its members.
    doc = {
        "format": "rayweave.workflow/1",
        "name": "fused",
        "inputs": {"a": {"type": "Int"}},
        "nodes": {
            "x": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": {"value": 1}}},
            "y": {"type": "builtin/add@1", "in": {"a": "x", "b": {"value": 2}}},
            "z": {"type": "builtin/multiply@1", "in": {"a": "y", "b": {"value": 3}}},
        },
        "outputs": {"out": "z", "mid": "y"},
    }
    DurableRunner(settings, executor="local", cache=True).run(doc, {"a": 1})
    runner = DurableRunner(settings, executor="local", cache=True)
    again = runner.run(doc, {"a": 1})
    assert again.outputs == {"out": 12, "mid": 4}
    assert {n.status.value for n in again.nodes.values()} == {"cached"}
    assert stored_outputs(runner.store, runner.results, again.run_id) == {"out": 12, "mid": 4}


def test_a_runner_without_a_cache_runs_every_node_again(runner: DurableRunner, log: Path) -> None:
    wf = flows.squares(log)
    assert runner.run(wf, {"x": 3}).outputs == runner.run(wf, {"x": 3}).outputs == {"out": 81}
    assert executions(log) == {"s1": 2, "s2": 2}


def test_retries_record_every_attempt(runner: DurableRunner, store: Store, log: Path) -> None:
    wf = Workflow("retrying")
    wf.output("out", wf.add("f", flows.flaky_inc, x=1, params={"log": str(log), "failures": 2}))
    result = runner.run(wf)
    assert result.outputs == {"out": 2}
    rows = store.node_runs.list(result.run_id)
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert rows[0].error == {"type": "ConnectionError", "message": "transient failure 1"}
    assert rows[2].result_location is not None


def test_a_failed_node_is_recorded_with_its_error(runner: DurableRunner, store: Store, log: Path) -> None:
    wf = Workflow("failing")
    wf.output("out", wf.add("f", flows.flaky_inc, x=1, params={"log": str(log), "failures": 5}))
    result = runner.run(wf)
    assert result.status is RunStatus.FAILED
    run = store.runs.get(result.run_id)
    assert run.status == "failed" and run.error is not None and run.error["failed_nodes"] == ["f"]
    last = store.node_runs.latest(result.run_id)["f"]
    assert (last.attempt, last.status, (last.error or {}).get("type")) == (3, "failed", "ConnectionError")


def test_idempotency_key_starts_one_run(runner: DurableRunner, store: Store, log: Path) -> None:
    first = runner.run(chain(log), {"x": 1}, idempotency_key="k1")
    second = runner.launch(chain(log), {"x": 1}, idempotency_key="k1")
    assert (second.handle.run_id, second.run.id, second.created) == (first.run_id, first.run_id, False)
    assert second.handle.result(timeout=5).outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}


@pytest.mark.parametrize("keep_result", [False, True], ids=["interrupted", "result-written"])
def test_resume_runs_only_what_had_not_succeeded(
    runner: DurableRunner, store: Store, log: Path, keep_result: bool
) -> None:
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="c", later=("d",), keep_result=keep_result)
    seq_before = store.events.last_seq(run_id)

    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    result = handles[run_id].result(timeout=10)

    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    assert store.runs.get(run_id).status == "succeeded"
    # a and b ran once in all; c ran again only if its result had not been written.
    assert executions(log) == {"a": 1, "b": 1, "c": 1 if keep_result else 2, "d": 2}
    expected_c = [("c", 1, "succeeded")] if keep_result else [("c", 1, "failed"), ("c", 2, "succeeded")]
    assert attempts(store, run_id) == [
        ("a", 1, "succeeded"),
        ("b", 1, "succeeded"),
        *expected_c,
        ("d", 1, "succeeded"),
    ]
    if not keep_result:
        assert store.node_runs.latest(run_id)["c"].attempt == 2
        assert (store.node_runs.list(run_id)[2].error or {}).get("type") == "RunInterrupted"
    events = store.events.read(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    resumed = [e for e in events if e.seq > seq_before]
    if keep_result:
        # c's success, which its coordinator died before announcing, is announced once by the resume.
        recovered = resumed.pop(0)
        assert (recovered.type, recovered.node, recovered.payload) == (
            "node.succeeded",
            "c",
            {"type": recovered.payload["type"], "attempt": 1, "recovered": True},
        )
    assert [e.node for e in events if e.type == "node.succeeded"].count("c") == 1
    assert resumed[0].type == "run.queued" and resumed[0].payload["resumed"] is True
    assert resumed[-1].type == "run.succeeded"
    assert not [e for e in resumed if e.type == "node.started" and e.node in ("a", "b")]
    # The resumed run's handle numbers its events like the store: earlier executions first, then its own.
    assert [(e.seq, str(e.type)) for e in handles[run_id].events()] == [(e.seq, e.type) for e in events]


def test_a_success_announced_before_the_crash_is_not_announced_again(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    """The coordinator appended c's `node.succeeded` and died before recording it in c's attempt: the resume
    records the attempt as succeeded and does not announce c a second time."""
    from engine.store import NewEvent
    from nodes.ids import NodeId

    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="c", later=("d",), keep_result=True)
    store.events.append(run_id, [NewEvent("node.succeeded", NodeId("c"), {"type": "t", "attempt": 1})])
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    assert handles[run_id].result(timeout=10).status is RunStatus.SUCCEEDED
    events = store.events.read(run_id)
    assert [e.node for e in events if e.type == "node.succeeded"].count("c") == 1
    assert ("c", 1, "succeeded") in attempts(store, run_id)


def test_fresh_runs_are_not_resumed_and_a_run_is_resumed_once(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="b", later=("c", "d"), keep_result=False)
    assert recover(runner=runner, stale_after_s=3600) == []  # its heartbeat is only a minute old

    found: list[list[str]] = []
    handles: dict[str, Any] = {}
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        found.append(recover(runner=runner, stale_after_s=5, handles=handles))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(len, found)) == [0, 0, 0, 1]
    assert handles[run_id].result(timeout=10).outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 2, "c": 2, "d": 2}


def test_a_run_that_cannot_be_resumed_is_failed_with_the_reason(
    settings: Settings, store: Store, log: Path
) -> None:
    runner = DurableRunner(settings, store=store, executor="local")
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="b", later=("c", "d"), keep_result=False)
    (Path(runner.results.uri) / run_id / "_blobs" / RESUME_BLOB).unlink()  # the node definitions are gone

    assert recover(runner=runner, stale_after_s=5) == []
    run = store.runs.get(run_id)
    assert run.status == "failed" and "durable_t/slow_inc@1" in (run.error or {}).get("reason", "")
    assert recover(runner=runner, stale_after_s=5) == []


def test_runs_not_started_durably_are_left_alone(runner: DurableRunner, store: Store) -> None:
    # e.g. a run started with plain engine.submit: it never heartbeats, so its silence proves nothing.
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    other = store.runs.create(document=doc, status="running").run.id
    time.sleep(0.05)
    assert recover(runner=runner, stale_after_s=0.01) == []
    assert store.runs.get(other).status == "running"


def test_a_crashed_run_behind_more_than_a_page_of_skipped_runs_is_resumed(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    # 120 older active runs the sweep must leave alone (not started durably) fill more than its page of 100:
    # the crashed durable run behind them is still found, and they are still left as they were.
    doc = {"format": "rayweave.workflow/1", "name": "w", "nodes": {}, "outputs": {}}
    earlier = datetime.now(UTC) - timedelta(hours=1)
    others = [
        store.runs.create(document=doc, status="running", at=earlier + timedelta(seconds=i)).run.id
        for i in range(120)
    ]
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="c", later=("d",), keep_result=False)
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    assert handles[run_id].result(timeout=10).outputs == {"out": 6}
    assert {store.runs.get(other).status for other in others} == {"running"}
    assert recover(runner=runner, stale_after_s=5) == []


def test_a_stored_result_without_any_recorded_attempt_is_used(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="c", later=("d",), keep_result=True)
    # The coordinator died before it recorded anything about c.
    forget_node_attempts(store, run_id, ["c"])
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    assert handles[run_id].result(timeout=10).outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 2}
    c = store.node_runs.latest(run_id)["c"]
    assert (c.attempt, c.status, c.node_type) == (1, "succeeded", "durable_t/slow_inc@1")


def test_resume_when_only_the_last_node_is_left(runner: DurableRunner, store: Store, log: Path) -> None:
    # c is seeded from the store and b, which only c reads, is not needed at all: the resumed plan runs d alone.
    run_id = runner.run(chain(log), {"x": 1}).run_id
    simulate_crash(store, runner.results, run_id, running="d", later=(), keep_result=False)
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    assert handles[run_id].result(timeout=10).outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 2}
    assert [a for a in attempts(store, run_id) if a[0] == "d"] == [("d", 1, "failed"), ("d", 2, "succeeded")]
