"""The ML plugin's scikit-learn nodes, each run in the plugin's own runtime environment on the session Ray,
tracking to a real MLflow SQLite database under tmp_path."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from ray.exceptions import RayTaskError, UnserializableException

from nodes.plugins.testing import run_plugin_node

pytestmark = pytest.mark.ray
#: A node's error reaches the test as Ray's task error, or, when its class (the plugin's) cannot be imported
#: outside the plugin's environment, as Ray's UnserializableException carrying the same message.
NODE_ERRORS = (RayTaskError, UnserializableException)
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def node(ml_nodes: dict[str, Any], name: str) -> Any:
    return ml_nodes[f"ml/{name}@1"]


@pytest.fixture(scope="module")
def iris(ml_nodes: dict[str, Any]) -> dict[str, pa.Table]:
    """Iris loaded and split (stratified, seeded) by the plugin's own nodes."""
    table = run_plugin_node(node(ml_nodes, "load_dataset"), params={"name": "iris"})["table"]
    parts = run_plugin_node(
        node(ml_nodes, "split"), {"table": table}, {"test_size": 0.3, "seed": 7, "stratify": "target"}
    )
    return {"table": table, "train": parts["train"], "test": parts["test"]}


def test_load_dataset_and_a_seeded_stratified_split(
    ml_nodes: dict[str, Any], iris: dict[str, pa.Table]
) -> None:
    table, train, test = iris["table"], iris["train"], iris["test"]
    assert table.num_rows == 150 and table.column_names == [*IRIS_FEATURES, "target"]
    assert (train.num_rows, test.num_rows) == (105, 45)
    # Stratified: each of the three classes keeps its third of the test rows.
    assert sorted(test.column("target").to_pylist()) == [0] * 15 + [1] * 15 + [2] * 15
    again = run_plugin_node(
        node(ml_nodes, "split"), {"table": table}, {"test_size": 0.3, "seed": 7, "stratify": "target"}
    )
    assert again["test"].equals(test)  # seeded: the same rows
    other = run_plugin_node(node(ml_nodes, "split"), {"table": table}, {"test_size": 0.3, "seed": 8})
    assert not other["test"].equals(test)
    diabetes = run_plugin_node(node(ml_nodes, "load_dataset"), params={"name": "diabetes"})["table"]
    assert diabetes.num_rows == 442 and diabetes.column_names[-1] == "target"


def test_train_evaluate_predict_and_register_track_to_mlflow(
    ml_nodes: dict[str, Any], iris: dict[str, pa.Table], mlflow_config: dict[str, str]
) -> None:
    import mlflow

    trained = run_plugin_node(
        node(ml_nodes, "train"),
        {"table": iris["train"], "params": {"C": 0.5, "max_iter": 500}},
        {"estimator": "sklearn.linear_model.LogisticRegression", "label": "target"},
        config=mlflow_config,
        run_id="run-a",
        node_id="train",
        workflow="iris-wf",
    )
    ref = trained["model"]
    # A small JSON reference to the logged model, not a pickled estimator.
    assert json.loads(json.dumps(ref)) == ref
    assert ref["uri"].startswith("models:/") and ref["flavor"] == "sklearn"
    assert ref["run_id"] == trained["mlflow_run_id"] and ref["task"] == "classification"
    assert ref["features"] == IRIS_FEATURES and ref["label"] == "target"
    assert ref["params"] == {"C": 0.5, "max_iter": 500} and ref["metrics"]["train_accuracy"] > 0.9
    assert [c["name"] for c in ref["signature"]["inputs"]] == IRIS_FEATURES
    assert f"MLflow run {ref['run_id']}" in trained.logs[0]  # the run id as a node.log event

    client = mlflow.MlflowClient(
        mlflow_config["mlflow.tracking_uri"], registry_uri=mlflow_config["mlflow.tracking_uri"]
    )
    run = client.get_run(ref["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5" and run.data.params["estimator"].endswith("LogisticRegression")
    assert run.data.metrics["train_accuracy"] == pytest.approx(ref["metrics"]["train_accuracy"])
    tags = run.data.tags
    assert tags["rayweave.run_id"] == "run-a" and tags["rayweave.node_id"] == "train"
    assert tags["rayweave.workflow"] == "iris-wf" and tags["rayweave.workflow_version"] == ""
    assert (tags["rayweave.node_type"], tags["rayweave.role"], tags["rayweave.attempt"]) == (
        "ml/train@1",
        "node",
        "1",
    )
    parent = client.get_run(tags["mlflow.parentRunId"])
    assert parent.data.tags["rayweave.role"] == "workflow" and parent.data.tags["rayweave.run_id"] == "run-a"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "rayweave/iris-wf"
    assert experiment.artifact_location.startswith(mlflow_config["mlflow.artifacts_uri"])
    mlflow.set_tracking_uri(mlflow_config["mlflow.tracking_uri"])
    info = mlflow.models.get_model_info(ref["uri"])
    assert info.signature is not None and info.saved_input_example_info is not None

    evaluated = run_plugin_node(
        node(ml_nodes, "evaluate"), {"model": ref, "table": iris["test"]}, config=mlflow_config
    )
    metrics = evaluated["metrics"]
    assert set(metrics) == {"test_accuracy", "test_f1_macro", "test_precision_macro", "test_recall_macro"}
    assert metrics["test_accuracy"] > 0.85
    assert evaluated["model"]["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert client.get_run(ref["run_id"]).data.metrics["test_f1_macro"] == pytest.approx(
        metrics["test_f1_macro"]
    )

    predicted = run_plugin_node(
        node(ml_nodes, "predict"), {"model": ref, "table": iris["test"]}, config=mlflow_config
    )
    out = predicted["table"]
    assert out.column_names == [*IRIS_FEATURES, "target", "prediction"]
    hits = sum(a == b for a, b in zip(out["prediction"].to_pylist(), out["target"].to_pylist(), strict=True))
    assert hits / out.num_rows == pytest.approx(metrics["test_accuracy"])

    registered = run_plugin_node(
        node(ml_nodes, "register"), {"model": evaluated["model"]}, {"name": "iris-clf"}, config=mlflow_config
    )
    assert (registered["name"], registered["version"], registered["uri"]) == (
        "iris-clf",
        1,
        "models:/iris-clf/1",
    )
    version = client.get_model_version("iris-clf", "1")
    assert version.run_id == ref["run_id"]
    assert version.tags["rayweave.run_id"] == "run-a" and version.tags["rayweave.node_id"] == "train"
    again = run_plugin_node(
        node(ml_nodes, "register"), {"model": ref}, {"name": "iris-clf"}, config=mlflow_config
    )
    assert again["version"] == 2


def test_regression_metrics(ml_nodes: dict[str, Any], mlflow_config: dict[str, str]) -> None:
    table = run_plugin_node(node(ml_nodes, "load_dataset"), params={"name": "diabetes"})["table"]
    trained = run_plugin_node(
        node(ml_nodes, "train"),
        {"table": table, "params": {"alpha": 0.1}},
        {"estimator": "sklearn.linear_model.Ridge"},
        config=mlflow_config,
    )
    evaluated = run_plugin_node(
        node(ml_nodes, "evaluate"), {"model": trained["model"], "table": table}, config=mlflow_config
    )
    assert trained["model"]["task"] == "regression"
    assert set(evaluated["metrics"]) == {"test_rmse", "test_mae", "test_r2"}
    assert 0.3 < evaluated["metrics"]["test_r2"] < 1.0


def test_select_best_by_metric_min_or_max(ml_nodes: dict[str, Any]) -> None:
    def ref(score: float) -> dict[str, Any]:
        return {
            "uri": "models:/m-x",
            "run_id": f"r{score}",
            "flavor": "sklearn",
            "features": ["a"],
            "task": "regression",
            "metrics": {"test_rmse": score},
        }

    models = [ref(3.0), ref(1.0), ref(2.0)]
    best = run_plugin_node(
        node(ml_nodes, "select_best"), {"models": models}, {"metric": "test_rmse", "mode": "min"}
    )
    assert (best["index"], best["value"], best["model"]["run_id"]) == (1, 1.0, "r1.0")
    best = run_plugin_node(node(ml_nodes, "select_best"), {"models": models}, {"metric": "test_rmse"})
    assert best["index"] == 0
    with pytest.raises(
        NODE_ERRORS, match=r"model 0 of input 'models' has no metric 'test_r2' \(it has \['test_rmse'\]\)"
    ):
        run_plugin_node(node(ml_nodes, "select_best"), {"models": models}, {"metric": "test_r2"})


@pytest.mark.parametrize(
    ("params", "inputs", "message"),
    [
        ({"estimator": "os.system"}, {}, "param 'estimator': estimator 'os.system' is not allowed"),
        (
            {"estimator": "sklearn.linear_model.LogisticRegresion"},
            {},
            "estimator 'sklearn.linear_model.LogisticRegresion' was not found",
        ),
        (
            {},
            {"params": {"C": 1.0, "depth": 3}},
            r"input 'params': LogisticRegression has no param\(s\) \['depth'\]; use some of \[",
        ),
        ({}, {"params": {"C": -1.0}}, "input 'params': LogisticRegression rejects params {'C': -1.0}"),
        (
            {"label": "species"},
            {},
            "param 'label' names column 'species', which input port 'table' does not have",
        ),
    ],
)
def test_bad_training_input_is_named(
    ml_nodes: dict[str, Any],
    iris: dict[str, pa.Table],
    mlflow_config: dict[str, str],
    params: dict[str, Any],
    inputs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(NODE_ERRORS, match=r"ml/train@1 \(node 'fit'\)") as caught:
        run_plugin_node(
            node(ml_nodes, "train"),
            {"table": iris["train"], **inputs},
            params,
            config=mlflow_config,
            node_id="fit",
        )
    assert caught.match(message)


def test_predict_needs_the_feature_columns(
    ml_nodes: dict[str, Any], iris: dict[str, pa.Table], mlflow_config: dict[str, str]
) -> None:
    ref = {
        "uri": "models:/m-x",
        "run_id": "r",
        "flavor": "sklearn",
        "features": IRIS_FEATURES,
        "task": "classification",
    }
    table = iris["test"].drop_columns(["petal width (cm)"])
    with pytest.raises(
        NODE_ERRORS,
        match=r"input port 'table' lacks the model's feature column\(s\) \['petal width \(cm\)'\]",
    ):
        run_plugin_node(node(ml_nodes, "predict"), {"model": ref, "table": table}, config=mlflow_config)
    with pytest.raises(NODE_ERRORS, match="not a model reference"):
        run_plugin_node(
            node(ml_nodes, "predict"), {"model": {"uri": "x"}, "table": table}, config=mlflow_config
        )
    with pytest.raises(NODE_ERRORS, match="the run's context has no MLflow tracking URI"):
        run_plugin_node(node(ml_nodes, "predict"), {"model": ref, "table": iris["test"]})
