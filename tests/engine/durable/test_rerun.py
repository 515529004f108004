"""Debugging runs on the in-process executor: run to a node, and re-run a node with its recorded inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner, recover
from engine.durable.rerun import launch_record
from engine.store import Store
from nodes.states import RunStatus
from tests.engine.durable.crash import simulate_crash
from tests.engine.durable.flows import chain, executions


@pytest.fixture
def runner(settings: Settings, store: Store) -> DurableRunner:
    """A durable runner on the in-process executor and SQLite."""
    return DurableRunner(settings, store=store, executor="local", heartbeat_s=0.1)


def test_run_to_a_node_runs_only_it_and_its_ancestors(runner: DurableRunner, log: Path) -> None:
    launched = runner.launch(chain(log), {"x": 1}, targets=["b"])
    result = launched.handle.result(timeout=30)
    assert result.status is RunStatus.SUCCEEDED and result.outputs == {"b__out": 3}
    assert executions(log) == {"a": 1, "b": 1}
    assert launch_record(runner.results, result.run_id) == {"targets": ["b"], "inputs_from": None}


def test_a_rerun_takes_the_upstream_outputs_of_the_earlier_run(runner: DurableRunner, log: Path) -> None:
    first = runner.run(chain(log), {"x": 1}, timeout=30)
    assert first.outputs == {"out": 6} and executions(log) == {"a": 1, "b": 1, "c": 1, "d": 1}
    again = runner.launch(chain(log), {"x": 1}, targets=["d"], inputs_from=first.run_id).handle.result(30)
    # d alone ran again, with a's and c's outputs of the first run.
    assert again.status is RunStatus.SUCCEEDED and again.outputs == {"d__out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 2}
    assert launch_record(runner.results, again.run_id) == {"targets": ["d"], "inputs_from": first.run_id}


def test_a_rerun_refuses_an_upstream_node_that_did_not_succeed(runner: DurableRunner, log: Path) -> None:
    partial = runner.run(chain(log), {"x": 1}, targets=["b"], timeout=30)
    with pytest.raises(ValueError, match=r"node 'c' ended pending in run"):
        runner.launch(chain(log), {"x": 1}, targets=["d"], inputs_from=partial.run_id)


def test_a_crashed_rerun_resumes_with_the_recorded_inputs_again(
    runner: DurableRunner, store: Store, log: Path
) -> None:
    first = runner.run(chain(log), {"x": 1}, timeout=30)
    again = runner.launch(chain(log), {"x": 1}, targets=["d"], inputs_from=first.run_id).handle.result(30)
    simulate_crash(store, runner.results, again.run_id, running="d", later=(), keep_result=False)
    handles: dict[str, Any] = {}
    assert recover(runner=runner, stale_after_s=5, handles=handles) == [again.run_id]
    resumed = handles[again.run_id].result(timeout=30)
    # Only d ran again: the run it re-runs still gives a's and c's outputs.
    assert resumed.status is RunStatus.SUCCEEDED and resumed.outputs == {"d__out": 6}
    assert executions(log) == {"a": 1, "b": 1, "c": 1, "d": 3}
