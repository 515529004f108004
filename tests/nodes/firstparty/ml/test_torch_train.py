"""`ml/train_torch@1`: Ray Train's TorchTrainer (2 CPU workers) inside a workflow run on the session Ray.

Real everything: the first-party ML plugin loaded in its own runtime environment, a real run through
`engine.run`, Ray Train's controller and workers nested under the node's task, MLflow on SQLite under
`tmp_path`, the logged model loaded back with `mlflow.pyfunc` and asked for predictions.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from cluster.settings import Settings
from engine.execution.events import Event
from nodes import Catalog
from nodes.states import EventType

ML_PLUGIN = Path(__file__).resolve().parents[4] / "nodes" / "firstparty" / "ml"
NODE = "ml/train_torch@1"


def blobs(rows: int = 240, seed: int = 7) -> pa.Table:
    """Three separable Gaussian blobs in 2-D, far from the origin and in different units per feature."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 4.0]])
    labels = rng.integers(0, 3, rows)
    points = centers[labels] + rng.normal(0.0, 1.0, (rows, 2))
    return pa.table(
        {
            "x": points[:, 0] * 100.0 + 1000.0,  # raw scale: the model must standardize it
            "y": points[:, 1],
            "kind": pa.array([["red", "green", "blue"][i] for i in labels]),
        }
    )


def workflow(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "torch-train",
        "inputs": {"table": {"type": "Table"}},
        "nodes": {"train": {"type": NODE, "in": {"table": "$inputs.table"}, "params": params}},
        "outputs": {
            "model": "train.model",
            "metrics": "train.metrics",
            "mlflow_run_id": "train.mlflow_run_id",
        },
    }


@pytest.fixture
def settings(tmp_path: Path, mlflow_config: dict[str, str]) -> Settings:
    """An installation under tmp_path tracking to a fresh MLflow SQLite database (the conftest's template)."""
    return Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri=mlflow_config["mlflow.tracking_uri"],
        mlflow_artifacts_uri=mlflow_config["mlflow.artifacts_uri"],
    )


@pytest.fixture(scope="module")
def ml_catalog(ray_session: Any) -> Catalog:
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    catalog = Catalog.builtin()
    report = load_plugins([open_plugin_dir(ML_PLUGIN)], catalog, timeout_s=240)
    assert not report.failed, report.failed
    return catalog


def run_training(catalog: Catalog, settings: Settings, params: dict[str, Any], table: pa.Table) -> Any:
    import engine

    events: list[Event] = []
    started = time.monotonic()
    result = engine.run(
        workflow(params),
        {"table": table},
        catalog=catalog,
        settings=settings,
        on_event=events.append,
        cache=False,
    )
    return result, events, time.monotonic() - started


@pytest.mark.slow
def test_train_torch_trains_tracks_and_logs_a_loadable_model(ml_catalog: Catalog, settings: Settings) -> None:
    import mlflow

    table = blobs()
    params = {"label": "kind", "epochs": 6, "lr": 0.05, "hidden": [16], "batch_size": 16, "seed": 3}
    result, events, wall = run_training(ml_catalog, settings, params, table)
    assert result.ok, result.errors
    print(f"train_torch wall time (6 epochs, 240 rows, 2 workers): {wall:.1f} s")

    # Per-epoch progress, in order, as node.progress events of the node, with the epoch's metrics.
    progress = [e.payload for e in events if e.type is EventType.NODE_PROGRESS and e.node == "train"]
    assert progress[0] == {"fraction": 0.0, "message": "2 Ray Train workers started", "attempt": 1}
    epochs = progress[1:]
    assert [p["fraction"] for p in epochs] == pytest.approx([n / 6 for n in range(1, 7)])
    assert epochs[0]["message"].startswith("epoch 1/6: loss=")
    assert "accuracy=" in epochs[-1]["message"]
    losses = [float(p["message"].split("loss=")[1].split()[0]) for p in epochs]
    assert losses[-1] < losses[0] * 0.6, losses  # it learns
    assert result.outputs["metrics"]["accuracy"] > 0.9
    assert result.outputs["metrics"]["loss"] == pytest.approx(losses[-1], rel=1e-3)

    # MLflow: the node's run is nested under the workflow run's parent and holds one metric per epoch.
    client = mlflow.MlflowClient(
        settings.resolved_mlflow_tracking_uri, registry_uri=settings.resolved_mlflow_tracking_uri
    )
    run = client.get_run(result.outputs["mlflow_run_id"])
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["rayweave.run_id"] == str(result.run_id)
    assert run.data.tags["rayweave.node_id"] == "train"
    assert run.data.params["trainer"] == "ray.train.torch.TorchTrainer"
    assert run.data.params["classes"] == "blue,green,red"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in history] == pytest.approx(losses, rel=1e-3)
    assert len(client.get_metric_history(run.info.run_id, "accuracy")) == 6

    # The model output is a reference to the logged MLflow model, which loads and predicts raw rows.
    ref = result.outputs["model"]
    assert ref["uri"].startswith("models:/") and ref["flavor"] == "pytorch"
    assert ref["run_id"] == run.info.run_id and ref["features"] == ["x", "y"]
    assert ref["classes"] == ["blue", "green", "red"] and ref["task"] == "classification"
    mlflow.set_tracking_uri(settings.resolved_mlflow_tracking_uri)
    model = mlflow.pyfunc.load_model(ref["uri"])
    frame = table.select(["x", "y"]).to_pandas().astype("float32")
    logits = np.asarray(model.predict(frame))
    assert logits.shape == (table.num_rows, 3)
    classes = ref["classes"]
    predicted = [classes[i] for i in logits.argmax(axis=1)]
    assert np.mean(np.array(predicted) == np.array(table.column("kind").to_pylist())) > 0.9


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"label": "colour"}, "param 'label' names column 'colour', which input port 'table' does not have"),
        ({"label": "kind", "epochs": 0}, "param 'epochs' is 0; use an int >= 1"),
        ({"label": "kind", "features": ["x", "z"]}, "param 'features' names ['z'], not columns"),
        ({"label": "kind", "hidden": [8, 0]}, "param 'hidden' is [8, 0]"),
        ({"label": "kind", "num_workers": 64}, "the Ray cluster has 4 CPUs in all"),
        (
            {"label": "kind", "task": "regression"},
            "param 'task' is 'regression' but label column 'kind' is string",
        ),
        ({"label": "x"}, "feature columns ['kind (string)'] of input port 'table' are not numeric"),
    ],
)
def test_bad_params_fail_the_node_naming_node_and_field(
    ml_catalog: Catalog, settings: Settings, params: dict[str, Any], expected: str
) -> None:
    result, _, _ = run_training(ml_catalog, settings, params, blobs(rows=20))
    assert not result.ok
    error = result.nodes["train"].error
    assert NODE in error.message and expected in error.message, error.message


def _live_groups() -> set[str]:
    """The ids of the placement groups Ray holds (created or waiting), not removed ones."""
    import ray

    table: Any = ray.util.placement_group_table()
    return {pid for pid, group in table.items() if group["state"] != "REMOVED"}


@pytest.mark.slow
def test_cancelling_train_torch_removes_its_placement_group(ml_catalog: Catalog, settings: Settings) -> None:
    import engine

    before = _live_groups()
    params = {"label": "kind", "epochs": 10_000, "batch_size": 4, "seed": 1}
    started = threading.Event()

    def on_event(event: Event) -> None:
        if event.type is EventType.NODE_PROGRESS and "workers started" in event.payload.get("message", ""):
            started.set()

    handle = engine.submit(
        workflow(params),
        {"table": blobs()},
        catalog=ml_catalog,
        settings=settings,
        on_event=on_event,
        cache=False,
    )
    assert started.wait(180), "the Ray Train workers did not start"
    assert _live_groups() - before, "the training holds no placement group"
    handle.cancel()
    assert handle.result(120).status.value == "cancelled"
    deadline = time.monotonic() + 60
    while _live_groups() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _live_groups() - before, "the cancelled training's placement group is still reserved"
