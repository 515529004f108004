"""`make demo`: a real ML pipeline on an embedded local Ray, end to end, in under a minute once installed.

1. installs the first-party ML plugin into the installation (`RAYWEAVE_HOME`, default `./.rayweave`) and reads
   its nodes inside the plugin's own Ray runtime environment;
2. runs `examples/ml_grid.json` durably (recorded in SQLite): load the wine dataset bundled with scikit-learn,
   split it, train a grid of random forests in parallel across the Ray workers, each an MLflow run nested
   under the workflow run's, evaluate them, pick the best by macro F1 and register it in the MLflow registry,
   with the trainings' progress shown live;
3. deploys the registered version on Ray Serve (batching, the in-replica fast path on loopback) and sends it
   a few rows over the Open Inference Protocol, printing the predictions;
4. says where to look: the MLflow runs, the model endpoint, the stored run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

#: The grid the demo trains: 8 random forests (two per CPU of a small machine, so the parallelism shows).
GRID = [
    {"n_estimators": n, "max_depth": depth, "random_state": 0} for n in (30, 60) for depth in (2, 3, 4, None)
]
EXAMPLE = Path(__file__).with_name("ml_grid.json")


def _install_ml_plugin(settings: Any) -> str:
    """Install the first-party ML plugin into the installation unless a version of it is installed."""
    from nodes.plugins.firstparty import firstparty_path
    from nodes.plugins.home import PluginHome

    home = PluginHome(settings.home)
    installed = [package.ref for package in home.installed() if package.manifest.name == "ml"]
    if installed:
        return installed[-1]
    path = firstparty_path("ml")
    if path is None:  # pragma: no cover - the plugin ships with rayweave
        raise RuntimeError("the first-party ML plugin is missing from this installation of rayweave")
    return str(home.install(path).ref)


def _train(settings: Any, console: Any) -> Any:
    """Run the grid workflow durably with a live view of the trainings; returns the `RunResult`."""
    from rich.live import Live
    from rich.table import Table

    from engine.compile import compile_workflow
    from engine.durable.runner import DurableRunner
    from serve.cli.catalogs import catalog_for

    catalog = catalog_for(settings)
    document = json.loads(EXAMPLE.read_text())
    plan = compile_workflow(document, catalog=catalog)
    runner = DurableRunner(settings, catalog=catalog)
    handle = runner.submit(document, {"grid": GRID})
    done: dict[str, str] = {}
    progress: dict[str, str] = {}

    def render() -> Table:
        table = Table(title=f"run {handle.run_id}: {len(done)} of {len(GRID)} trained", title_justify="left")
        table.add_column("training")
        table.add_column("state")
        for index, params in enumerate(GRID):
            key = f"[{index}]"
            state = done.get(key) or progress.get(key) or "waiting"
            table.add_row(f"#{index} {params['n_estimators']} trees, depth {params['max_depth']}", state)
        return table

    with Live(render(), console=console, refresh_per_second=8) as live:
        for event in handle.events(poll_s=0.2):
            node = str(event.node or "")
            key = node[node.find("[") : node.find("]") + 1] if "[" in node else ""
            if key and node.endswith("evaluate") and event.type == "node.succeeded":
                done[key] = "[green]evaluated[/green]"
            elif key and node.endswith("train") and event.type in ("node.started", "node.succeeded"):
                progress[key] = "training" if event.type == "node.started" else "trained"
            live.update(render())
    del plan
    console.print(f"{len(done)} of {len(GRID)} models trained and evaluated")
    return handle.result()


def _serve_and_predict(settings: Any, name: str, version: str, console: Any) -> dict[str, Any]:
    """Deploy the registered model on Ray Serve, send it three rows over OIP; returns its description."""
    import httpx
    import pyarrow as pa
    from sklearn.datasets import load_wine

    from engine.store import open_store
    from serve.bootstrap import ensure_admin_key
    from serve.models.manager import DeployRequest, deploy

    with open_store(settings.resolved_database_url) as store:
        ensure_admin_key(store, settings.home)
    key = settings.admin_key_path.read_text().strip()
    served = deploy(settings, DeployRequest(name=name, version=version))
    data = load_wine(as_frame=True).frame.drop(columns=["target"])
    rows = data.iloc[[0, 70, 140]]
    table = pa.Table.from_pandas(rows, preserve_index=False)
    body = {
        "inputs": [
            {
                "name": column,
                "shape": [table.num_rows],
                "datatype": "FP64",
                "data": table.column(column).to_pylist(),
            }
            for column in table.column_names
        ]
    }
    started = time.perf_counter()
    answer = httpx.post(
        f"{served['endpoint']}/v2/models/{name}/infer",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    outputs = answer.json()["outputs"]
    predictions = outputs[0]["data"]
    console.print(
        f"predictions for wine rows 0, 70, 140 (true classes 0, 1, 2): {predictions} ({elapsed_ms:.1f} ms)"
    )
    return served


def main() -> int:
    """Run the pipeline: train, track, register, deploy, predict; returns the exit status."""
    from rich.console import Console

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings

    console = Console()
    settings = Settings()
    connection = ensure_ray(settings)
    console.print(
        f"[bold]rayweave demo[/bold]: local Ray at {connection.address} (loopback only, token auth on)"
    )
    console.print(f"plugin {_install_ml_plugin(settings)} installed in {settings.home}")
    result = _train(settings, console)
    console.print(f"run {result.run_id}: [bold]{result.status.value}[/bold]")
    if not result.ok:
        for node, outcome in result.nodes.items():
            if outcome.error is not None:
                console.print(f"  {node}: {outcome.error}")
        return 1
    best, registered, version = (
        result.outputs["best"],
        result.outputs["registered"],
        result.outputs["version"],
    )
    console.print(
        f"best model: {best['params']} with test macro F1 {result.outputs['best_f1']:.3f}; registered as {registered}"
    )
    name = registered.split("/")[1]
    served = _serve_and_predict(settings, name, str(version), console)
    console.print()
    console.print("where to look:")
    console.print(
        f"  MLflow runs:   .venv/bin/mlflow ui --backend-store-uri {settings.resolved_mlflow_tracking_uri}"
    )
    console.print(
        f"  model:         {served['endpoint']}/v2/models/{name} (Open Inference Protocol, until the demo exits)"
    )
    console.print(f"  the run:       .venv/bin/rayweave runs show {result.run_id}")
    dashboard = connection.dashboard_url or "not running (RAYWEAVE_RAY_DASHBOARD=true starts it)"
    console.print(f"  Ray dashboard: {dashboard}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
