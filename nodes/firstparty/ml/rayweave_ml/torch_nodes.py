"""Distributed training with Ray Train: `ml/train_torch@1` trains an MLP on an Arrow table with `TorchTrainer`.

The node is Ray Train's driver. It runs in a Ray task of the plugin's runtime environment that holds **no
CPU** (`Resources(num_cpus=0)`): it only waits while the trainer's workers (one CPU each) compute. Were the
task to hold a CPU, as many training nodes as the cluster has CPUs could start at once, each waiting for
workers that no free CPU is left to place: a deadlock. Holding none, the nodes wait in Ray's queue for their
workers' placement group, which Ray reserves whole or not at all.

Per epoch, the metrics (averaged over the workers) become a `node.progress` event, message
`epoch 3/10: loss=0.4213 accuracy=0.9`, and MLflow metrics at `step=epoch` in the node's MLflow run, nested
under the workflow run's parent run. The `model` output is a reference to the model logged with
`mlflow.pytorch` (a dict holding its URI, as `rayweave_ml.models` describes), never a pickled object.

Cancelling the node (or its run) stops the training: the engine force-stops the node's task, and Ray stops the
trainer's controller and workers with it. The workers' placement group is removed by the plugin's
`PlacementSweeper` (`rayweave_ml.sweeper`), which sees the task's actors go; Ray Train's own cleaner needs Ray's
State API (the dashboard), and without it the group stayed reserved until the Ray job ended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, TypedDict

import pyarrow as pa

import typesys
from nodes import Resources, context, node
from nodes.ray_options import actor_options
from rayweave_ml.torch_train import (
    NODE,
    PreparedData,
    TrainConfig,
    build_model,
    check_config,
    fit,
    prepare_data,
)

__all__ = ["TorchTrainOut", "train_torch"]

DEFAULT_HIDDEN = (32, 16)


class TorchTrainOut(TypedDict):
    """Outputs of `ml/train_torch@1`."""

    model: Annotated[dict[str, Any], typesys.ModelType("pytorch")]
    metrics: dict[str, float]
    mlflow_run_id: str


def _progress_message(metrics: Mapping[str, float], epochs: int) -> str:
    shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch")
    return f"epoch {int(metrics['epoch'])}/{epochs}: {shown}"


@contextmanager
def _tracked_run(ctx: context.NodeContext, params: Mapping[str, Any]) -> Iterator[Any]:
    """The node's MLflow run, nested under its workflow run's parent run."""
    from rayweave_ml import tracking

    with tracking.node_run(ctx, NODE, params=params) as run:
        yield run


def _log_model(model: Any, data: PreparedData) -> tuple[Any, Any]:
    """Log the trained model with `mlflow.pytorch` (signature, input example); its `ModelInfo` and signature."""
    import mlflow
    import mlflow.pytorch
    import pandas as pd
    import torch
    from mlflow.models import infer_signature

    example = pd.DataFrame(data.x[:5], columns=data.features).astype("float32")
    with torch.no_grad():
        output = model(torch.as_tensor(data.x[:5])).numpy()
    signature = infer_signature(example, output)
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        # torch.save of standard layers: loads with torch alone, and keeps the signature's named columns
        # (MLflow's default for torch, "pt2", takes tensor signatures only).
        serialization_format="pickle",
        # Given, not inferred: inferring runs the model's loader in a subprocess, seconds per training.
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
    )
    return info, signature


def _signature_summary(signature: Any) -> dict[str, Any]:
    data = signature.to_dict()
    return {part: json.loads(data[part]) if data.get(part) else [] for part in ("inputs", "outputs")}


@node(
    plugin="ml",
    version="1.0.0",
    category="ml",
    tags=("ml", "train", "torch", "ray-train"),
    cache=False,
    deterministic=False,
    resources=Resources(num_cpus=0),
)
def train_torch(
    table: pa.Table,
    *,
    label: str,
    features: list[str] | None = None,
    task: str = "auto",
    epochs: int = 10,
    lr: float = 0.01,
    hidden: list[int] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    num_workers: int = 2,
) -> TorchTrainOut:
    """Train an MLP on a table with Ray Train (`TorchTrainer`, data-parallel over CPU workers), tracked in MLflow.

    Features are standardized inside the model, so it takes raw feature values. Classification (a string,
    integer or boolean label) minimizes cross-entropy and the model outputs one logit per class, in the
    order of the `classes` param logged to MLflow; regression (a float label) minimizes squared error.

    Args:
        table: Training rows: numeric feature columns and the label column.
        label: Name of the label column.
        features: Feature columns; default: every column but the label.
        task: `auto` (float label: regression, else classification), `classification` or `regression`.
        epochs: Passes over the data.
        lr: Adam learning rate.
        hidden: Widths of the hidden layers (default [32, 16]).
        batch_size: Rows per batch and worker.
        seed: Seed of the weights and the shuffling.
        num_workers: Ray Train workers, one CPU each.

    Returns:
        model: The reference of the model logged with `mlflow.pytorch` (`Model[pytorch]`): a dict with its
            `uri` (`models:/m-...`), `run_id`, `features`, `task`, `classes` (the label of each output column
            for classification), `metrics` and `signature`, as the plugin's other model references.
        metrics: The last epoch's metrics (`loss`, and `accuracy` for classification).
        mlflow_run_id: The node's MLflow run.
    """
    ctx = context.current()
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        hidden=tuple(DEFAULT_HIDDEN if hidden is None else hidden),
        batch_size=batch_size,
        seed=seed,
        num_workers=num_workers,
    )
    check_config(config)
    data = prepare_data(table, label, features, task)
    params = {
        "trainer": "ray.train.torch.TorchTrainer",
        "label": label,
        "features": ",".join(data.features),
        "task": data.task,
        "classes": ",".join(map(str, data.classes)),
        "epochs": epochs,
        "lr": lr,
        "hidden": ",".join(map(str, config.hidden)),
        "batch_size": batch_size,
        "seed": seed,
        "num_workers": num_workers,
        "rows": table.num_rows,
    }
    last: dict[str, float] = {}
    with _tracked_run(ctx, params) as run:
        import mlflow

        def on_epoch(metrics: Mapping[str, float]) -> None:
            step = int(metrics["epoch"])
            values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
            mlflow.log_metrics(values, step=step)
            ctx.progress(step / epochs, _progress_message(metrics, epochs))
            last.clear()
            last.update(values)

        def on_start(workers: int) -> None:
            ctx.progress(0.0, f"{workers} Ray Train workers started")

        ctx.logger.info("starting TorchTrainer with %d workers for %d epochs", num_workers, epochs)
        state = fit(
            data,
            config,
            on_epoch,
            on_start=on_start,
            name=re.sub(r"[^A-Za-z0-9_.-]+", "-", f"train_torch-{ctx.run_id or 'local'}-{ctx.node_id}").strip(
                "-"
            ),
            queue_options=actor_options(Resources(num_cpus=0)),
        )
        model = build_model(len(data.features), config.hidden, data.outputs, data.mean, data.scale)
        model.load_state_dict(state)
        model.eval()
        info, signature = _log_model(model, data)
    ref = {
        "uri": info.model_uri,
        "model_id": getattr(info, "model_id", None) or "",
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "experiment_id": run.experiment_id,
        "flavor": "pytorch",
        "estimator": "torch.nn.Sequential (MLP, ray.train.torch.TorchTrainer)",
        "params": {k: v for k, v in params.items() if k not in ("label", "features", "task", "classes")},
        "task": data.task,
        "label": label,
        "features": data.features,
        "classes": list(data.classes),
        "metrics": dict(last),
        "signature": _signature_summary(signature),
    }
    return {"model": ref, "metrics": last, "mlflow_run_id": run.run_id}
