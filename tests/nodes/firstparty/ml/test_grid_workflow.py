"""examples/ml_grid.json end to end through `engine.run` on the session Ray with the ML plugin loaded: a
parallel grid of trainings (a map), the best picked by a metric and registered; MLflow holds one parent run
for the rayweave run with one nested run per training, and the run's events name the MLflow runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.compile.pipeline import document_version
from engine.execution.events import Event
from nodes import Catalog
from nodes.states import EventType

pytestmark = [pytest.mark.ray, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "ml_grid.json"
GRID = [
    {"n_estimators": 10, "max_depth": 1, "random_state": 0},
    {"n_estimators": 20, "max_depth": 3, "random_state": 0},
    {"n_estimators": 20, "max_depth": None, "random_state": 0},
]


def test_the_grid_example_trains_in_parallel_selects_and_registers(
    ml_catalog: Catalog, tmp_path: Path, mlflow_template: Path
) -> None:
    import mlflow

    import engine

    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mlflow_template, home / "mlflow.db")  # the default tracking URI: {home}/mlflow.db
    settings = Settings(home=home)
    events: list[Event] = []
    document = json.loads(EXAMPLE.read_text())
    result = engine.run(
        document, {"grid": GRID}, catalog=ml_catalog, settings=settings, on_event=events.append, cache=False
    )
    assert result.ok, result.errors
    outputs = result.outputs
    models = outputs["models"]
    assert [m["params"] for m in models] == GRID
    f1 = [m["metrics"]["test_f1_macro"] for m in models]
    assert outputs["best_f1"] == max(f1) and outputs["best"] == models[f1.index(max(f1))]
    assert (outputs["registered"], outputs["version"]) == ("models:/wine-classifier/1", 1)

    client = mlflow.MlflowClient(
        settings.resolved_mlflow_tracking_uri, registry_uri=settings.resolved_mlflow_tracking_uri
    )
    experiment = client.get_experiment_by_name("rayweave/ml-grid")
    assert experiment is not None
    assert experiment.artifact_location.startswith(settings.resolved_mlflow_artifacts_uri)
    parents = client.search_runs([experiment.experiment_id], "tags.`rayweave.role` = 'workflow'")
    assert len(parents) == 1 and parents[0].data.tags["rayweave.run_id"] == str(result.run_id)
    parent_id = parents[0].info.run_id
    assert _parent_of(client, "ml-grid", str(result.run_id), "FINISHED").info.status == "FINISHED"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    by_node = {run.data.tags["rayweave.node_id"]: run for run in children}
    assert sorted(by_node) == [f"grid[{i}].train" for i in range(len(GRID))]
    for index, model in enumerate(models):
        run = by_node[f"grid[{index}].train"]
        assert run.info.run_id == model["run_id"] and model["parent_run_id"] == parent_id
        assert run.data.tags["rayweave.workflow"] == "ml-grid"
        assert run.data.tags["rayweave.run_id"] == str(result.run_id)
        # A document that is not stored: the workflow version is its content hash.
        assert run.data.tags["rayweave.workflow_version"] == document_version(document)
        assert run.data.metrics["test_f1_macro"] == pytest.approx(model["metrics"]["test_f1_macro"])
    version = client.get_model_version("wine-classifier", "1")
    assert version.run_id == outputs["best"]["run_id"]
    assert version.tags["rayweave.run_id"] == str(result.run_id)

    # The run's event stream names every training's MLflow run (node.log events of the map's elements).
    logged = [
        e for e in events if e.type is EventType.NODE_LOG and e.payload["message"].startswith("MLflow run")
    ]
    assert {e.node for e in logged} == {f"grid[{i}].train" for i in range(len(GRID))}
    assert {e.payload["message"].split()[2] for e in logged} == {m["run_id"] for m in models}


def _parent_of(client: Any, workflow: str, run_id: str, status: str) -> Any:
    """The parent MLflow run of rayweave run `run_id` once it has `status` (the closer ends it just after the
    run ends), or the last one seen after 90 s (ending it took over 30 s once at a load of 18)."""
    deadline = time.monotonic() + 90
    while True:
        experiment = client.get_experiment_by_name(f"rayweave/{workflow}")
        found = client.search_runs(
            [experiment.experiment_id],
            f"tags.`rayweave.role` = 'workflow' and tags.`rayweave.run_id` = '{run_id}'",
        )
        if (found and found[0].info.status == status) or time.monotonic() > deadline:
            return found[0] if found else None
        time.sleep(0.2)


def test_the_parent_run_ends_with_the_workflow_run_and_its_status(
    ml_catalog: Catalog, tmp_path: Path, mlflow_template: Path
) -> None:
    import mlflow

    import engine

    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mlflow_template, home / "mlflow.db")
    settings = Settings(home=home)
    client = mlflow.MlflowClient(
        settings.resolved_mlflow_tracking_uri, registry_uri=settings.resolved_mlflow_tracking_uri
    )

    def document(column: str) -> dict[str, Any]:
        return {
            "format": "rayweave.workflow/1",
            "name": "parent-end",
            "nodes": {
                "data": {"type": "ml/load_dataset@1", "params": {"name": "iris"}},
                "train": {"type": "ml/train@1", "in": {"table": "data.table"}},
                # `target` is a column of the table already: predict fails after train, and the run with it.
                "predict": {
                    "type": "ml/predict@1",
                    "in": {"model": "train.model", "table": "data.table"},
                    "params": {"column": column},
                },
            },
            "outputs": {"table": "predict.table"},
        }

    good = engine.run(document("prediction"), None, catalog=ml_catalog, settings=settings, cache=False)
    assert good.ok, good.errors
    parent = _parent_of(client, "parent-end", str(good.run_id), "FINISHED")
    assert parent.info.status == "FINISHED" and parent.info.end_time is not None

    bad = engine.run(document("target"), None, catalog=ml_catalog, settings=settings, cache=False)
    assert not bad.ok
    parent = _parent_of(client, "parent-end", str(bad.run_id), "FAILED")
    assert parent.info.status == "FAILED" and parent.info.end_time is not None
