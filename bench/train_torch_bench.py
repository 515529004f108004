"""Wall time of `ml/train_torch@1` (Ray Train's TorchTrainer, 2 CPU workers) on a tiny task: cold and warm.

Run: `python -m bench.train_torch_bench` (about three minutes on 2 cores). One process starts a loopback Ray
with 4 logical CPUs (as the test session does), loads the first-party ML plugin in its runtime environment, and
runs a one-node workflow training an MLP (one hidden layer of 16) on 240 rows x 2 features, 6 epochs, with
MLflow tracking to SQLite in a fresh home:

- cold: the first call (the node's worker process, MLflow's database and tables, Ray Train's controller and
  workers: every process started for the first time);
- warm: the median of the next `WARM` calls (Ray Train starts its controller and workers again every time: it
  keeps none between runs).

A baseline follows: the same MLP and epochs in plain Ray Train, `TorchTrainer(...).fit()` called from this
process with Ray Train's defaults (no rayweave, no MLflow, no plugin environment).

Each call is split by the node's own events: until Ray Train's workers are up (`2 Ray Train workers started`),
the epochs, and the rest (Ray Train's shutdown, logging the model to MLflow). The load average is printed: on a
shared 2-core machine the startup of Ray Train's processes dominates and moves with it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ML_PLUGIN = Path(__file__).resolve().parents[1] / "nodes" / "firstparty" / "ml"
WARM = 2
PARAMS = {"label": "kind", "epochs": 6, "lr": 0.05, "hidden": [16], "batch_size": 16, "seed": 3}
DOC = {
    "format": "rayweave.workflow/1",
    "name": "train-torch-bench",
    "inputs": {"table": {"type": "Table"}},
    "nodes": {"train": {"type": "ml/train_torch@1", "in": {"table": "$inputs.table"}, "params": PARAMS}},
    "outputs": {"metrics": "train.metrics"},
}


def blobs(rows: int = 240, seed: int = 7) -> pa.Table:
    """Three Gaussian blobs in 2-D with a string label."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 4.0]])
    labels = rng.integers(0, 3, rows)
    points = centers[labels] + rng.normal(0.0, 1.0, (rows, 2))
    names = np.array(["red", "green", "blue"])[labels]
    return pa.table({"x": points[:, 0], "y": points[:, 1], "kind": pa.array(names.tolist())})


def one_call(catalog: Any, settings: Any, table: pa.Table) -> dict[str, float]:
    """Run the workflow once; the wall time and its phases from the node's events."""
    import engine
    from nodes.states import EventType

    marks: dict[str, float] = {}
    started = time.monotonic()

    def on_event(event: Any) -> None:
        now = time.monotonic() - started
        message = str(event.payload.get("message", "")) if event.type is EventType.NODE_PROGRESS else ""
        if event.type is EventType.NODE_STARTED:
            marks["node_started"] = now
        elif message.endswith("workers started"):
            marks["workers_up"] = now
        elif message.startswith("epoch "):
            marks["last_epoch"] = now

    result = engine.run(
        DOC, {"table": table}, catalog=catalog, settings=settings, on_event=on_event, cache=False
    )
    wall = time.monotonic() - started
    if not result.ok:
        raise SystemExit(f"the training failed: {result.errors}")
    return {
        "wall": wall,
        "to_workers_up": marks["workers_up"],
        "epochs": marks["last_epoch"] - marks["workers_up"],
        "after_epochs": wall - marks["last_epoch"],
    }


def raw_loop(config: dict[str, Any]) -> None:
    """The same MLP and epochs in plain Ray Train (no rayweave, no MLflow): the baseline's per-worker loop."""
    import ray.train
    import ray.train.torch
    import torch

    torch.manual_seed(0)
    x, y = config["data"]
    dataset = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    loader = ray.train.torch.prepare_data_loader(
        torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True)
    )
    layers = [torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)]
    model = ray.train.torch.prepare_model(torch.nn.Sequential(*layers))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _epoch in range(config["epochs"]):
        for features, target in loader:
            optimizer.zero_grad()
            loss: Any = torch.nn.functional.cross_entropy(model(features), target)
            loss.backward()
            optimizer.step()


def raw_call(table: pa.Table) -> float:
    """Wall time of plain `TorchTrainer(...).fit()` from this process on the same data (the baseline)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    x = np.column_stack([table.column(c).to_numpy() for c in ("x", "y")]).astype(np.float32)
    classes = sorted(set(table.column("kind").to_pylist()))
    y = np.array([classes.index(v) for v in table.column("kind").to_pylist()], dtype=np.int64)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as storage:
        TorchTrainer(
            raw_loop,
            train_loop_config={"data": (x, y), "epochs": PARAMS["epochs"]},
            scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
            run_config=RunConfig(storage_path=storage),
        ).fit()
    return time.monotonic() - started


def main() -> None:
    from cluster.ray_runtime import ensure_ray, loopback_environment, shutdown_ray
    from cluster.settings import Settings
    from nodes import Catalog
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    for key, value in loopback_environment().items():
        os.environ.setdefault(key, value)
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="rayweave-bench-")))
    began = time.monotonic()
    ensure_ray(settings, num_cpus=4, include_dashboard=False)
    ray_s = time.monotonic() - began
    try:
        began = time.monotonic()
        catalog = Catalog.builtin()
        report = load_plugins([open_plugin_dir(ML_PLUGIN)], catalog, timeout_s=300)
        if report.failed:
            raise SystemExit(f"the ML plugin did not load: {report.failed}")
        plugin_s = time.monotonic() - began
        table = blobs()
        cold = one_call(catalog, settings, table)
        warm = [one_call(catalog, settings, table) for _ in range(WARM)]
        raw = raw_call(table)
    finally:
        shutdown_ray()
    print(
        f"Ray started in {ray_s:.1f} s; ML plugin loaded in {plugin_s:.1f} s; load average {os.getloadavg()}"
    )
    print(f"{'':>10} {'wall':>7} {'to workers up':>14} {'6 epochs':>9} {'after epochs':>13}")
    rows = [("cold", cold), *[(f"warm {i + 1}", w) for i, w in enumerate(warm)]]
    for label, call in rows:
        print(
            f"{label:>10} {call['wall']:7.1f} {call['to_workers_up']:14.1f} {call['epochs']:9.2f} "
            f"{call['after_epochs']:13.1f}"
        )
    print(f"warm median wall: {statistics.median(w['wall'] for w in warm):.1f} s")
    print(f"plain Ray Train, same MLP and epochs, TorchTrainer.fit() from this process: {raw:.1f} s")


if __name__ == "__main__":
    main()
