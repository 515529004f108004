"""Data-parallel training of a small MLP with Ray Train's `TorchTrainer` (the engine of `ml/train_torch@1`).

Three parts, each usable on its own:

- `prepare_data`: an Arrow table, a label column and feature columns become float32 features, encoded labels
  and the feature means and scales, with errors that name the node, the param and the fix
  (`rayweave_ml.errors`);
- `build_model`: a `torch.nn.Sequential` of standard layers only (the first one a frozen standardizer), so a
  logged model loads wherever torch is installed, without this package;
- `fit`: runs `TorchTrainer` (`ScalingConfig(num_workers=N, use_gpu=False)`) and streams each epoch's metrics,
  averaged over the workers, to a callback in the calling thread while training runs; returns the trained
  weights. The calling process is Ray Train's driver: usually a node's Ray task, which should hold no CPU
  while the workers it waits for need them (see `ml/train_torch@1`).

Worker rank 0 sends epoch metrics and the final weights through a `ray.util.queue.Queue` (an actor holding no
CPU), so nothing needs storage shared between the nodes of the cluster: Ray Train's `storage_path` is a
scratch directory of this machine, removed afterwards. Heavy imports (torch, Ray Train) happen inside the
functions.
"""

from __future__ import annotations

import os
import queue as stdlib_queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from rayweave_ml.errors import ColumnError, ParamError

__all__ = [
    "NODE",
    "PreparedData",
    "TrainConfig",
    "build_model",
    "check_config",
    "fit",
    "prepare_data",
    "train_loop_per_worker",
]

#: The node type id used in error messages.
NODE = "ml/train_torch@1"
TASKS = ("auto", "classification", "regression")

# Ray Train's controller polls its workers every 2 s by default, and a worker's report waits for that poll;
# the controller reads these from the driver's environment when `fit` starts it. A tiny job wants a short poll.
_CONTROLLER_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # The preemption watcher is one more actor (one more process to start) and there is no preemption here.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}


@dataclass(frozen=True)
class TrainConfig:
    """The training params of one run (validated by `check_config`)."""

    epochs: int = 10
    lr: float = 0.01
    hidden: tuple[int, ...] = (32, 16)
    batch_size: int = 32
    seed: int = 0
    num_workers: int = 2


@dataclass
class PreparedData:
    """Features and encoded labels of a table, with what is needed to use the trained model on new rows."""

    x: np.ndarray  # float32, (rows, features)
    y: np.ndarray  # int64 class indexes (classification) or float32 targets (regression)
    features: list[str]
    label: str
    task: str  # "classification" or "regression"
    classes: list[Any] = field(default_factory=list)  # classification: label value of each class index
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    @property
    def outputs(self) -> int:
        """Width of the model's output: one logit per class, or one value for regression."""
        return len(self.classes) if self.task == "classification" else 1


def check_config(config: TrainConfig) -> None:
    """Raise `rayweave_ml.errors.ParamError` naming the first param out of range."""
    checks: list[tuple[str, bool, str]] = [
        ("epochs", config.epochs >= 1, "an int >= 1"),
        ("lr", config.lr > 0 and np.isfinite(config.lr), "a finite number > 0"),
        ("batch_size", config.batch_size >= 1, "an int >= 1"),
        ("num_workers", config.num_workers >= 1, "an int >= 1"),
        ("hidden", all(h >= 1 for h in config.hidden), "a list of layer widths, each >= 1 ([] for none)"),
    ]
    for name, ok, wanted in checks:
        if not ok:
            value = getattr(config, name)
            shown = list(value) if isinstance(value, tuple) else value
            raise ParamError(f"{NODE}: param {name!r} is {shown!r}; use {wanted}")


def _numeric(column: pa.ChunkedArray) -> bool:
    t = column.type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _label_task(table: pa.Table, label: str, task: str) -> str:
    if task not in TASKS:
        raise ParamError(f"{NODE}: param 'task' is {task!r}; use one of {list(TASKS)}")
    if task != "auto":
        return task
    return "regression" if pa.types.is_floating(table.column(label).type) else "classification"


def _feature_names(table: pa.Table, label: str, features: Sequence[str] | None) -> list[str]:
    columns = table.column_names
    if label not in columns:
        raise ColumnError(
            f"{NODE}: param 'label' names column {label!r}, which input port 'table' does not have "
            f"(columns: {columns}); name the label column"
        )
    names = [c for c in columns if c != label] if not features else list(features)
    missing = [c for c in names if c not in columns]
    if missing:
        raise ColumnError(
            f"{NODE}: param 'features' names {missing}, not columns of input port 'table' "
            f"(columns: {columns}); use existing columns"
        )
    if label in names:
        raise ParamError(f"{NODE}: param 'features' holds the label column {label!r}; leave it out")
    if not names:
        raise ParamError(f"{NODE}: input port 'table' has no feature columns besides label {label!r}")
    wrong = [f"{c} ({table.column(c).type})" for c in names if not _numeric(table.column(c))]
    if wrong:
        raise ParamError(
            f"{NODE}: feature columns {wrong} of input port 'table' are not numeric; encode them first or "
            f"leave them out with param 'features'"
        )
    return names


def prepare_data(
    table: pa.Table, label: str, features: Sequence[str] | None = None, task: str = "auto"
) -> PreparedData:
    """Features and labels of `table` for training; raises `ParamError` naming the param at fault."""
    names = _feature_names(table, label, features)
    task = _label_task(table, label, task)
    nulls = [c for c in [*names, label] if table.column(c).null_count]
    if nulls:
        raise ParamError(
            f"{NODE}: columns {nulls} of input port 'table' hold nulls; drop or fill those rows first"
        )
    if table.num_rows < 2:
        raise ParamError(f"{NODE}: input port 'table' has {table.num_rows} rows; training needs at least 2")
    x = np.column_stack([table.column(c).to_numpy().astype(np.float32) for c in names])
    mean = x.mean(axis=0).astype(np.float32)
    scale = x.std(axis=0).astype(np.float32)
    scale[scale == 0] = 1.0
    labels = table.column(label).to_pylist()
    if task == "regression":
        if not _numeric(table.column(label)):
            raise ParamError(
                f"{NODE}: param 'task' is 'regression' but label column {label!r} is "
                f"{table.column(label).type}; use a numeric label or task 'classification'"
            )
        y = np.asarray(labels, dtype=np.float32)
        return PreparedData(x, y, names, label, task, [], mean, scale)
    classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise ParamError(
            f"{NODE}: label column {label!r} has {len(classes)} distinct value(s); classification needs 2 or more"
        )
    index = {value: i for i, value in enumerate(classes)}
    y = np.asarray([index[v] for v in labels], dtype=np.int64)
    return PreparedData(x, y, names, label, task, classes, mean, scale)


def build_model(inputs: int, hidden: Sequence[int], outputs: int, mean: Any, scale: Any) -> Any:
    """The MLP: a frozen standardizer (`(x - mean) / scale` as a Linear layer), then Linear+ReLU layers.

    Standard torch layers only, so the saved model needs nothing but torch to load.
    """
    import torch

    standardize = torch.nn.Linear(inputs, inputs)
    with torch.no_grad():
        inverse = 1.0 / torch.tensor(
            np.asarray(scale, dtype=np.float32)
        )  # a copy: Ray's arrays are read-only
        standardize.weight.copy_(torch.diag(inverse))
        standardize.bias.copy_(-torch.tensor(np.asarray(mean, dtype=np.float32)) * inverse)
    standardize.requires_grad_(False)
    layers: list[Any] = [standardize]
    width = inputs
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers.append(torch.nn.Linear(width, outputs))
    return torch.nn.Sequential(*layers)


def _epoch_metrics(model: Any, loader: Any, task: str, loss_fn: Any, optimizer: Any) -> dict[str, float]:
    """Train one epoch; the sums of loss, correct predictions and rows of this worker's shard."""
    import torch

    sums = torch.zeros(3, dtype=torch.float64)
    model.train()
    for features, target in loader:
        optimizer.zero_grad()
        output = model(features)
        prediction = output.squeeze(-1) if task == "regression" else output
        loss = loss_fn(prediction, target)
        loss.backward()
        optimizer.step()
        rows = len(target)
        correct = float((output.argmax(dim=1) == target).sum()) if task == "classification" else 0.0
        sums += torch.tensor([loss.item() * rows, correct, rows], dtype=torch.float64)
    torch.distributed.all_reduce(sums)
    metrics = {"loss": float(sums[0] / sums[2])}
    if task == "classification":
        metrics["accuracy"] = float(sums[1] / sums[2])
    return metrics


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: DDP over the workers, each training on its shard of the rows.

    Rank 0 puts on `config["queue"]`: `{"workers": world_size, "placement_group": hex id}` once the process
    group is up,
    `{"epoch": n, "loss": .., "accuracy": ..}` after every epoch (averaged over all workers' rows) and
    `{"state_dict": {...}}` (numpy arrays) at the end.
    """
    import ray
    import ray.train
    import ray.train.torch
    import torch

    torch.manual_seed(config["seed"])
    x, y = ray.get(config["data"][0])
    task = config["task"]
    dataset = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    generator = torch.Generator().manual_seed(config["seed"])
    loader: Any = torch.utils.data.DataLoader(
        dataset, batch_size=config["batch_size"], shuffle=True, generator=generator
    )
    loader = ray.train.torch.prepare_data_loader(loader)
    model: Any = build_model(x.shape[1], config["hidden"], config["outputs"], config["mean"], config["scale"])
    model = ray.train.torch.prepare_model(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
    loss_fn = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    out = config["queue"]
    if rank == 0:
        group = ray.get_runtime_context().get_placement_group_id()  # the workers' group (a hex id)
        out.put({"workers": world, "placement_group": group or ""})
    for epoch in range(1, config["epochs"] + 1):
        if world > 1:
            loader.sampler.set_epoch(epoch)
        metrics = _epoch_metrics(model, loader, task, loss_fn, optimizer)
        if rank == 0:
            out.put({"epoch": epoch, **metrics})
    if rank == 0:
        inner = model.module if hasattr(model, "module") else model
        out.put({"state_dict": {k: v.detach().cpu().numpy() for k, v in inner.state_dict().items()}})


@contextmanager
def _controller_environment() -> Iterator[None]:
    """Set Ray Train's controller settings in this process's environment while a trainer starts."""
    saved = {key: os.environ.get(key) for key in _CONTROLLER_ENV}
    for key, value in _CONTROLLER_ENV.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _check_capacity(num_workers: int) -> None:
    import ray

    cluster: Any = ray
    total = cluster.cluster_resources().get("CPU", 0.0)
    if total < num_workers:
        raise ParamError(
            f"{NODE}: param 'num_workers' is {num_workers} but the Ray cluster has {total:g} CPUs in all; "
            f"each worker needs one: lower num_workers or add nodes to the cluster"
        )


def fit(
    data: PreparedData,
    config: TrainConfig,
    on_epoch: Callable[[Mapping[str, float]], None],
    *,
    on_start: Callable[[int], None] | None = None,
    name: str = "train_torch",
    queue_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train with `TorchTrainer` on `config.num_workers` CPU workers; returns the model's state dict (torch).

    `on_epoch(metrics)` is called in this thread after each epoch (`metrics` has `epoch`, `loss` and, for
    classification, `accuracy`); `on_start(workers)` once the workers are up, before the first epoch.
    `queue_options` are the Ray actor options of the metrics queue. Needs a
    connected Ray. A failed training raises Ray Train's `TrainingFailedError` with the workers' error.
    """
    import ray
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Empty, Queue

    from rayweave_ml.sweeper import placement_sweeper, sweep_when_gone

    check_config(config)
    _check_capacity(config.num_workers)
    sweeper = placement_sweeper()  # started now: ready when the workers' placement group is known
    channel = Queue(actor_options=dict(queue_options or {}))
    scratch = tempfile.mkdtemp(prefix="rayweave-train-")
    loop_config = {
        "data": [ray.put((data.x, data.y))],  # in a list: Ray Train must not resolve it on the driver
        "task": data.task,
        "outputs": data.outputs,
        "mean": data.mean,
        "scale": data.scale,
        "hidden": list(config.hidden),
        "lr": config.lr,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "queue": channel,
    }
    trainer = _trainer_class(TorchTrainer)(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=False),
        run_config=RunConfig(name=name, storage_path=scratch),
    )
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    state: dict[str, Any] | None = None
    try:
        with _controller_environment():  # until `fit` ends: the controller reads it when it starts
            worker = threading.Thread(target=run, name=f"{name}-fit", daemon=True)
            worker.start()
            while worker.is_alive() or not channel.empty():
                try:
                    message = channel.get(timeout=0.2)
                except (Empty, stdlib_queue.Empty):
                    continue
                if "state_dict" in message:
                    state = {k: torch.tensor(v) for k, v in message["state_dict"].items()}
                elif "workers" in message:
                    if message.get("placement_group"):  # removed if this task is stopped (cancel)
                        sweep_when_gone(sweeper, channel.actor, str(message["placement_group"]))
                    if on_start is not None:
                        on_start(int(message["workers"]))
                else:
                    on_epoch(message)
            worker.join()
    finally:
        actor: Any = channel.actor
        ray.kill(actor)
        shutil.rmtree(scratch, ignore_errors=True)
    if "error" in outcome:
        raise outcome["error"]
    if state is None:
        raise RuntimeError(f"{NODE}: training ended without the trained weights from worker rank 0")
    return state


def _trainer_class(base: Any) -> Any:
    """`base` (Ray Train's `TorchTrainer`) without Ray Train's `PlacementGroupCleaner`.

    That detached cleaner watches its controller through Ray's State API, which the dashboard serves: without a
    dashboard (rayweave's embedded Ray) a cancelled training left it polling, and logging a warning into every
    driver's output, every second, forever. `rayweave_ml.sweeper.PlacementSweeper` does its job (removing the
    group of a training whose task is gone) with Ray's core API alone."""
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    class Trainer(base):  # type: ignore[misc]
        def _create_default_callbacks(self) -> list[Any]:
            callbacks = super()._create_default_callbacks()
            return [c for c in callbacks if not isinstance(c, PlacementGroupCleanerCallback)]

    return Trainer
