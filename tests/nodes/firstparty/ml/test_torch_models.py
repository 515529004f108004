"""`predict`, `evaluate` and `register` take the torch models `ml/train_torch@1` produces (`Model[pytorch]`) as
well as scikit-learn's; a workflow wiring a torch training into them compiles, another flavor does not.

The torch model here is trained in the test process with plain torch (no Ray Train: that is
test_torch_train.py's) and logged as the node logs it; its reference is the one `train_torch` returns."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from nodes import Catalog
from nodes.plugins.testing import run_plugin_node

pytestmark = [pytest.mark.ray, pytest.mark.slow]
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _torch_iris(tracking_uri: str, artifacts_uri: str) -> tuple[dict[str, Any], pa.Table]:
    """An MLP trained on iris and logged with `mlflow.pytorch` as `train_torch` logs it: its reference (the
    classes are labels "a", "b", "c", so the predictions must map logits back to them) and the table."""
    import mlflow
    import mlflow.pytorch
    import pandas as pd
    import torch
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    classes = ["a", "b", "c"]
    frame = data.data.astype("float32")
    x = torch.as_tensor(frame.to_numpy())
    y = torch.as_tensor(data.target.to_numpy())
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    mlflow.set_tracking_uri(tracking_uri)
    # The experiment named, not the process's active one (another test may have set one of another store).
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    experiment_id = client.create_experiment("torch-iris", artifact_location=f"{artifacts_uri}/torch-iris")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        with torch.no_grad():
            signature = infer_signature(frame.head(5), model(x[:5]).numpy())
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            signature=signature,
            input_example=frame.head(3),
            serialization_format="pickle",
            pip_requirements=["torch"],
        )
    ref = {
        "uri": info.model_uri,
        "run_id": run.info.run_id,
        "flavor": "pytorch",
        "task": "classification",
        "label": "target",
        "features": IRIS_FEATURES,
        "classes": classes,
        "metrics": {},
    }
    labelled = pd.concat([frame, pd.Series([classes[i] for i in data.target], name="target")], axis=1)
    return ref, pa.Table.from_pandas(labelled, preserve_index=False)


def test_predict_evaluate_and_register_take_a_torch_model(
    ml_nodes: dict[str, Any], mlflow_config: dict[str, str]
) -> None:
    import mlflow

    ref, table = _torch_iris(mlflow_config["mlflow.tracking_uri"], mlflow_config["mlflow.artifacts_uri"])
    predicted = run_plugin_node(
        ml_nodes["ml/predict@1"], {"model": ref, "table": table}, config=mlflow_config
    )
    out = predicted["table"]
    assert set(out["prediction"].to_pylist()) <= {"a", "b", "c"}  # labels, not logit indexes
    hits = sum(a == b for a, b in zip(out["prediction"].to_pylist(), out["target"].to_pylist(), strict=True))
    assert hits / out.num_rows > 0.9

    evaluated = run_plugin_node(
        ml_nodes["ml/evaluate@1"], {"model": ref, "table": table}, config=mlflow_config
    )
    assert evaluated["metrics"]["test_accuracy"] == pytest.approx(hits / out.num_rows)
    assert evaluated["model"]["flavor"] == "pytorch"

    registered = run_plugin_node(
        ml_nodes["ml/register@1"], {"model": evaluated["model"]}, {"name": "iris-torch"}, config=mlflow_config
    )
    assert registered["uri"] == "models:/iris-torch/1"
    client = mlflow.MlflowClient(
        mlflow_config["mlflow.tracking_uri"], registry_uri=mlflow_config["mlflow.tracking_uri"]
    )
    assert client.get_model_version("iris-torch", "1").run_id == ref["run_id"]


def test_a_torch_training_wires_into_predict_and_other_flavors_do_not(ml_catalog: Catalog) -> None:
    import typesys
    from engine.compile import compile_workflow

    document = {
        "format": "rayweave.workflow/1",
        "name": "torch-then-predict",
        "inputs": {"table": {"type": "Table"}},
        "nodes": {
            "train": {"type": "ml/train_torch@1", "in": {"table": "$inputs.table"}, "params": {"label": "y"}},
            "evaluate": {"type": "ml/evaluate@1", "in": {"model": "train.model", "table": "$inputs.table"}},
            "predict": {"type": "ml/predict@1", "in": {"model": "evaluate.model", "table": "$inputs.table"}},
            "register": {"type": "ml/register@1", "in": {"model": "train.model"}, "params": {"name": "m"}},
        },
        "outputs": {"table": "predict.table", "uri": "register.uri"},
    }
    assert compile_workflow(document, ml_catalog).node("predict") is not None
    port = {p.name: p.type for p in ml_catalog.get("ml/predict@1").spec.inputs}["model"]
    assert not typesys.is_assignable(typesys.ModelType("xgboost"), port)
    assert typesys.is_assignable(typesys.ModelType("sklearn"), port)
