"""Benchmark of scale-from-zero (serverless models, issue 19): the time from the first request to a model at zero
replicas until its answer.

All in one process run, on one local Ray, each deployment with the same Serve autoscaling (`min_replicas` 0,
`max_replicas` 1, a 1 s downscale delay):

- `rayweave`: an iris model deployed by `serve.models.manager.deploy` with `autoscale=(0, 1)`, called the way the
  API's `/v2/models/{name}/infer` route calls it (`infer` through a Serve handle, an OIP JSON body); its replica
  loads the model from MLflow and starts its fast path;
- `serve-mlflow`: a plain Ray Serve deployment written by hand that loads the same MLflow model in its
  constructor and predicts a DataFrame (what a user would write without rayweave);
- `serve-empty`: a plain Ray Serve deployment that does nothing (Serve's own floor: starting a replica actor).

Each round waits until all three are at zero replicas, then sends each its first request (the order rotates per
round) and times it to the answer. Prints each round, the medians and the ratios of rayweave's median to the
plain ones, and the load average at the start and the end.

    .venv/bin/python bench/cold_start_bench.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The scaling every deployment of the bench gets (as `serve.models.manager.scaling_options` makes it).
DELAY_S = 1.0


def autoscaling() -> dict[str, Any]:
    """Serve's autoscaling config of the plain deployments, equal to rayweave's for `(0, 1)` and `DELAY_S`."""
    from serve.models.manager import scaling_options
    from serve.models.replica import ModelSpec

    spec = ModelSpec("x", "1", "", "", 0, autoscale=(0, 1), downscale_delay_s=DELAY_S)
    config: dict[str, Any] = scaling_options(spec)["autoscaling_config"]
    return config


class Empty:
    """A deployment that does nothing."""

    def __call__(self, value: Any) -> Any:
        return value


class PlainMlflow:
    """A hand-written Serve deployment of an MLflow model."""

    def __init__(self, tracking_uri: str, model_uri: str) -> None:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.model = mlflow.pyfunc.load_model(model_uri)

    def __call__(self, records: list[dict[str, float]]) -> list[Any]:
        import pandas as pd

        return list(self.model.predict(pd.DataFrame(records)))


def running(app: str, deployment: str) -> int:
    """Running replicas of `deployment` in `app`."""
    from ray import serve

    status = serve.status().applications.get(app)
    if status is None or deployment not in status.deployments:
        return 0
    states: dict[Any, int] = dict(status.deployments[deployment].replica_states)
    return int(states.get("RUNNING", 0))


def wait_all_zero(targets: list[tuple[str, str]], timeout_s: float = 300) -> float:
    """Seconds until none of `targets` (app, deployment) has a running replica."""
    start = time.monotonic()
    while any(running(app, dep) for app, dep in targets):
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"still running after {timeout_s} s: {targets}")
        time.sleep(0.1)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (cold starts per deployment)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    load_start = os.getloadavg()

    import ray
    from ray import serve

    from cluster.settings import Settings
    from serve.models import manager
    from serve.models.sample import iris_rows, register_iris

    home = Path(tempfile.mkdtemp(prefix="cold-start-"))
    settings = Settings(home=home)
    version = register_iris(settings.resolved_mlflow_tracking_uri, "iris-cold")
    model_uri = f"models:/iris-cold/{version.version}"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    try:
        manager.deploy(
            settings,
            manager.DeployRequest(
                "iris-cold", str(version.version), autoscale=(0, 1), downscale_delay_s=DELAY_S
            ),
        )
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": 0},
            "autoscaling_config": autoscaling(),
        }
        empty: Any = serve.deployment(Empty, name="empty", **options)
        plain: Any = serve.deployment(PlainMlflow, name="plain", **options)
        serve.run(empty.bind(), name="bench-empty", route_prefix=None)
        serve.run(
            plain.bind(settings.resolved_mlflow_tracking_uri, model_uri),
            name="bench-mlflow",
            route_prefix=None,
        )
        rows = iris_rows(1)
        oip = json.dumps(
            {
                "inputs": [
                    {"name": name, "shape": [1], "datatype": "FP64", "data": [rows[0][name]]}
                    for name in rows[0]
                ]
            }
        ).encode()
        handles = {
            "rayweave": manager.handle("iris-cold"),
            "serve-mlflow": serve.get_deployment_handle("plain", "bench-mlflow"),
            "serve-empty": serve.get_deployment_handle("empty", "bench-empty"),
        }
        calls = {
            "rayweave": lambda h: h.infer.remote(oip, "application/json"),
            "serve-mlflow": lambda h: h.remote(rows),
            "serve-empty": lambda h: h.remote(1),
        }
        targets = [
            (manager.app_name("iris-cold"), manager.DEPLOYMENT),
            ("bench-mlflow", "plain"),
            ("bench-empty", "empty"),
        ]
        names = list(handles)
        samples: dict[str, list[float]] = {name: [] for name in names}
        rounds = []
        for index in range(args.repeat):
            to_zero = wait_all_zero(targets)
            order = names[index % 3 :] + names[: index % 3]
            row: dict[str, Any] = {"round": index + 1, "waited_for_zero_s": round(to_zero, 2)}
            for name in order:
                assert running(*targets[names.index(name)]) == 0
                started = time.perf_counter()
                answer = calls[name](handles[name]).result(timeout_s=600)
                took = time.perf_counter() - started
                if name == "rayweave":
                    assert answer[0] == 200, answer
                samples[name].append(took)
                row[name] = round(took, 3)
            rounds.append(row)
            if not args.json:
                print("round", row, flush=True)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        result = {
            "repeat": args.repeat,
            "cold_start_s": {
                name: {"median": round(m, 3), "all": samples[name]} for name, m in medians.items()
            },
            "ratio_rayweave_to_serve_mlflow": round(medians["rayweave"] / medians["serve-mlflow"], 2),
            "ratio_rayweave_to_serve_empty": round(medians["rayweave"] / medians["serve-empty"], 2),
            "load_average_start": [round(x, 1) for x in load_start],
            "load_average_end": [round(x, 1) for x in os.getloadavg()],
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for name, m in medians.items():
                print(
                    f"cold start {name:<13} median {m:7.3f} s  (all: {', '.join(f'{v:.2f}' for v in samples[name])})"
                )
            print(
                f"ratio rayweave / plain Serve with the same MLflow model: {result['ratio_rayweave_to_serve_mlflow']}x;"
                f" / plain Serve doing nothing: {result['ratio_rayweave_to_serve_empty']}x"
            )
            print(
                f"load average at start {result['load_average_start']}, at end {result['load_average_end']}"
            )
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


if __name__ == "__main__":
    main()
