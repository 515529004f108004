"""Parallel node runs of one rayweave run, in separate worker processes released at the same moment, on a
fresh MLflow SQLite database: the database is initialised once (no racing migrations) and exactly one parent
MLflow run is created, under which every node run is nested with its lineage tags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
CONTENDERS = 6


def contend(gate: str, index: int, config: dict[str, str], run_id: str) -> tuple[str, str, int]:
    """One node run's tracking, started when all contenders have arrived at the gate (a directory)."""
    import mlflow  # imported before the gate: the contenders then start together
    from rayweave_ml.tracking import node_run

    from nodes.context import NodeContext

    Path(gate, str(index)).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(gate).iterdir())) < CONTENDERS:
        if time.monotonic() > deadline:
            raise TimeoutError("not every contender reached the gate")
        time.sleep(0.002)
    ctx = NodeContext(run_id, f"grid[{index}].train", workflow="race", workflow_version="3", config=config)
    with node_run(ctx, "ml/train@1", params={"index": index}) as run:
        mlflow.log_metric("index", index)
    return run.run_id, run.parent_run_id, os_pid()


def os_pid() -> int:
    import os

    return os.getpid()


def test_one_parent_run_under_parallel_node_runs(ml_nodes: dict[str, Any], tmp_path: Path) -> None:
    import mlflow
    import ray

    gate = tmp_path / "gate"
    gate.mkdir()
    config = {
        "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}",  # not created yet
        "mlflow.artifacts_uri": (tmp_path / "mlartifacts").as_uri(),
    }
    env = ml_nodes["ml/train@1"].runtime_env
    task: Any = ray.remote(contend).options(runtime_env=env, num_cpus=0.25, max_retries=0)
    refs = [task.remote(str(gate), i, config, "run-race") for i in range(CONTENDERS)]
    results = ray.get(refs, timeout=240)

    assert len({pid for _, _, pid in results}) == CONTENDERS  # really separate processes
    parents = {parent for _, parent, _ in results}
    assert len(parents) == 1, parents
    (parent_id,) = parents
    client = mlflow.MlflowClient(config["mlflow.tracking_uri"], registry_uri=config["mlflow.tracking_uri"])
    experiment = client.get_experiment_by_name("rayweave/race")
    assert experiment is not None
    active = client.search_runs([experiment.experiment_id], "tags.`rayweave.role` = 'workflow'")
    assert [run.info.run_id for run in active] == [parent_id]  # losing candidates were deleted
    parent = active[0]
    assert parent.data.tags["rayweave.run_id"] == "run-race" and parent.info.status == "FINISHED"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(run.info.run_id for run in children) == sorted(run_id for run_id, _, _ in results)
    for run in children:
        tags = run.data.tags
        index = int(run.data.params["index"])
        assert tags["rayweave.node_id"] == f"grid[{index}].train"
        assert (tags["rayweave.run_id"], tags["rayweave.workflow"], tags["rayweave.workflow_version"]) == (
            "run-race",
            "race",
            "3",
        )
        assert run.data.metrics["index"] == index and run.info.status == "FINISHED"
