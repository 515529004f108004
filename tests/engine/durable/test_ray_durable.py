"""Durable runs on the session's Ray: retries recorded per attempt, and cancelling through the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.store import Store
from engine.workflow import Workflow
from nodes.ids import RunId
from nodes.states import RunStatus
from tests.engine.durable import flows
from tests.engine.durable.crash import simulate_crash
from tests.engine.durable.flows import chain, executions

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def test_retries_on_ray_record_every_attempt(settings: Settings, store: Store, log: Path) -> None:
    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    wf = Workflow("retrying")
    wf.output("out", wf.add("f", flows.flaky_inc, x=1, params={"log": str(log), "failures": 2}))
    result = runner.run(wf, timeout=60)
    assert result.outputs == {"out": 2}
    rows = store.node_runs.list(result.run_id)
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert rows[-1].result_location == runner.results.location(result.run_id, "f")
    assert store.runs.get(result.run_id).outputs == {"out": 2}


def test_a_cached_rerun_on_ray_runs_no_node(settings: Settings, store: Store, log: Path) -> None:
    wf = flows.squares(log)
    first = DurableRunner(settings, store=store, cache=True)
    assert first.run(wf, {"x": 3}, timeout=60).outputs == {"out": 81}
    # Durable runs never read object refs from the cache, so they keep none there (they would pin objects).
    assert first.cache is not None and len(first.cache.objects) == 0
    runner = DurableRunner(settings, store=store, cache=True)  # a new process: the disk level answers
    again = runner.run(wf, {"x": 3}, timeout=60)
    assert again.outputs == {"out": 81} and executions(log) == {"s1": 1, "s2": 1}
    assert store.runs.get(again.run_id).outputs == {"out": 81}


def test_cancelling_in_the_store_stops_the_run_on_ray(settings: Settings, store: Store, log: Path) -> None:
    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    handle = runner.submit(chain(log, seconds=3.0, slow="b"), {"x": 1})
    deadline = time.monotonic() + 30
    while store.node_runs.latest(handle.run_id).get("b") is None:
        assert time.monotonic() < deadline, "node b never started"
        time.sleep(0.05)
    started = time.monotonic()
    store.runs.update_status(
        handle.run_id, "cancelled", only_from=("running",)
    )  # what `rayweave runs cancel` does
    result = handle.result(timeout=30)
    assert result.status is RunStatus.CANCELLED
    assert time.monotonic() - started < 2.5, (
        "the coordinator stopped the run at its next heartbeat, not after b"
    )
    assert store.runs.get(handle.run_id).status == "cancelled"
    assert executions(log) == {"a": 1}
    assert store.node_runs.latest(handle.run_id)["b"].status == "cancelled"


def test_resume_on_ray_when_only_the_last_node_is_left(settings: Settings, store: Store, log: Path) -> None:
    # c comes from the result store and b, which only c reads, is pruned: the coordinator gets a plan whose
    # seeded node's upstream is absent, and must run d alone.
    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    run_id = runner.run(chain(log), {"x": 1}, timeout=60).run_id
    simulate_crash(store, runner.results, run_id, running="d", later=(), keep_result=False)
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [run_id]
    result = handles[run_id].result(timeout=60)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 2}


def test_unstorable_outputs_and_messages_on_ray(settings: Settings, store: Store) -> None:
    # The output check runs in the Ray task (its error crosses to the coordinator as the node's error); messages
    # and log lines are cleaned by the sink in the coordinator.
    runner = DurableRunner(settings, store=store, heartbeat_s=0.2)
    wf = Workflow("unstorable-on-ray")
    wf.output("value", wf.add("make", flows.unstorable, params={"kind": "nul"}))
    result = runner.run(wf, timeout=60)
    assert result.status is RunStatus.FAILED
    error = result.nodes["make"].error
    assert error is not None and error.type == "UnstorableOutputError" and "port 'out'" in error.message

    noisy = Workflow("noisy-on-ray")
    noisy.output("out", noisy.add("noisy", flows.noisy_failure, x=noisy.input("x", "Int")))
    failed = runner.run(noisy, {"x": 1}, timeout=60)
    assert store.runs.get(failed.run_id).status == "failed"
    [row] = store.node_runs.list(failed.run_id)
    assert "bad \ufffd value \ufffd (1)" in (row.error or {}).get("message", "")
    logs = [e.payload["message"] for e in store.events.read(failed.run_id) if e.type == "node.log"]
    assert logs == ["line \ufffd with \ufffd in it"]


def _dies_on_first_attempt(marker: str) -> tuple[bool, bool]:
    import os

    from engine.durable.persist import ray_reattempt

    if not os.path.exists(marker):
        with open(marker, "w") as out:
            out.write(str(ray_reattempt()))
        os._exit(1)  # the worker dies: Ray runs the task again
    with open(marker) as seen:
        return seen.read() == "True", ray_reattempt()


def test_a_task_ray_runs_again_knows_it_so_a_stored_result_answers(tmp_path: Path) -> None:
    # What keeps a node that succeeded from running twice when Ray runs its task again (a dead worker, or a
    # result lost with its host: tests/cluster/multihost): the durable wrapper asks `ray_reattempt`.
    import ray

    from engine.durable.persist import ray_reattempt

    task: Any = ray.remote(max_retries=1)(_dies_on_first_attempt)
    assert ray.get(task.remote(str(tmp_path / "marker")), timeout=120) == (False, True)
    assert ray_reattempt() is False  # a driver is never a reattempt


def _stores_then_dies_on_first_attempt(marker: str, results_dir: str) -> tuple[bool, bool]:
    import os

    from engine.durable.persist import PersistingDefinition
    from engine.durable.results import ResultStore

    definition = PersistingDefinition(None, ResultStore(results_dir))
    if not os.path.exists(marker):
        definition.results.put(RunId("r1"), "stored", {"out": 1})
        open(marker, "w").close()
        os._exit(1)  # its host dies after the node stored its outputs, before Ray heard of its success
    return (
        definition.stored_by_earlier_attempt(RunId("r1"), "stored"),
        definition.stored_by_earlier_attempt(RunId("r1"), "never-stored"),
    )


def test_a_node_ray_runs_again_after_it_stored_its_outputs_reports_success_not_a_cache_hit(
    tmp_path: Path,
) -> None:
    # The task of such a node skips its cache lookup (engine.execution.task._run_cached), so `invoke` returns
    # what the earlier attempt stored and the node's event is `node.succeeded`: the node did succeed, once.
    import ray

    from engine.durable.persist import PersistingDefinition
    from engine.durable.results import ResultStore

    task: Any = ray.remote(max_retries=1)(_stores_then_dies_on_first_attempt)
    marker, results = str(tmp_path / "marker"), str(tmp_path / "results")
    assert ray.get(task.remote(marker, results), timeout=120) == (True, False)
    # Outside a reattempt (the driver here), a stored result is no reason to skip the cache.
    assert (
        PersistingDefinition(None, ResultStore(results)).stored_by_earlier_attempt(RunId("r1"), "stored")
        is False
    )
