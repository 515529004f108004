"""Benchmark of model serving: one iris LogisticRegression (MLflow pyfunc), single-row predictions.

All in one process run, against the same registered model: calling the model in-process; MLflow's own scoring
server (`mlflow models serve`, loopback, `--env-manager local`); a plain Ray Serve deployment over Serve's HTTP
proxy (1 and 2 replicas); and rayweave's model deployment through its fast path (the HTTP server inside each
replica, docs/adr/014) with 1 and 2 replicas, with and without dynamic batching. For each: p50/p95 latency of
one keep-alive client, then throughput and p50 of `--clients` concurrent keep-alive clients.

    .venv/bin/python bench/ml_serving_bench.py [--requests 1000] [--clients 8] [--json]

Targets (issue 22): rayweave's single-row p50 over HTTP at or below MLflow's own server; with batching at 8
clients, at least twice plain Ray Serve's unbatched throughput. `bench/ml_bench.py` calls `measure_serving`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(call: Callable[[], Any], requests: int, warmup: int = 100) -> dict[str, float]:
    """p50/p95 in ms of `requests` sequential calls (after `warmup`)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(pct(samples, 0.5), 3), "p95_ms": round(pct(samples, 0.95), 3)}


def throughput(make_call: Callable[[], Callable[[], Any]], clients: int, per_client: int) -> dict[str, float]:
    """Requests/s and p50 ms of `clients` threads, each with its own client making `per_client` calls."""
    samples: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker() -> None:
        call = make_call()
        for _ in range(10):
            call()
        mine = []
        barrier.wait()
        for _ in range(per_client):
            started = time.perf_counter()
            call()
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"req_per_s": round(len(samples) / elapsed, 1), "p50_ms": round(pct(samples, 0.5), 3)}


def http_poster(url: str, body: bytes, headers: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    """A factory of keep-alive clients POSTing `body` to `url` (each checks for 200)."""
    import httpx

    def make() -> Callable[[], Any]:
        client = httpx.Client(headers={"content-type": "application/json", **headers}, timeout=60)

        def call() -> Any:
            r = client.post(url, content=body)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {r.status_code} {r.text[:300]}")
            return r

        return call

    return make


def measure_target(make: Callable[[], Callable[[], Any]], requests: int, clients: int) -> dict[str, Any]:
    """One client's latency, then `clients` clients' throughput."""
    one = latency(make(), requests)
    many = throughput(make, clients, max(50, requests // clients))
    return {**one, f"x{clients}": many}


@contextmanager
def mlflow_server(tracking_uri: str, model_uri: str) -> Iterator[str]:
    """`mlflow models serve` on loopback (local environment); yields its base URL."""
    import httpx

    from serve.models.fastpath import free_port

    port = free_port()
    # MLflow starts `uvicorn` by name: the venv's scripts must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--env-manager",
        "local",
        "-w",
        "1",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow models serve did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def plain_serve_app(tracking_uri: str, model_uri: str, replicas: int) -> Any:
    """A plain Ray Serve deployment of the pyfunc model (JSON records in, a list out), as the Serve docs do it."""
    from ray import serve

    @serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
    class PlainModel:
        def __init__(self) -> None:
            import mlflow

            from serve.loopback import keep_replica_grpc_on_loopback

            keep_replica_grpc_on_loopback()
            mlflow.set_tracking_uri(tracking_uri)
            self.model = mlflow.pyfunc.load_model(model_uri)

        async def __call__(self, request: Any) -> Any:
            import pandas as pd

            frame = pd.DataFrame.from_records(await request.json())
            return self.model.predict(frame).tolist()

    return PlainModel.bind()


def measure_serving(requests: int = 1000, clients: int = 8) -> dict[str, Any]:
    """Every serving target on one fresh installation; returns the figures by target, with the ratios."""
    import mlflow
    import pandas as pd
    import pyarrow as pa
    from ray import serve

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.store import open_store
    from serve.models import manager
    from serve.models.sample import iris_rows, register_iris

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        uri = settings.resolved_mlflow_tracking_uri
        version = register_iris(uri, "iris", artifacts_uri=str(Path(tmp) / "mlartifacts"))
        model_uri = f"models:/iris/{version.version}"
        row = iris_rows(1)[0]
        records = json.dumps([row]).encode()
        oip = json.dumps(
            {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [row[c]]} for c in COLUMNS]}
        ).encode()

        mlflow.set_tracking_uri(uri)
        model = mlflow.pyfunc.load_model(model_uri)
        frame = pd.DataFrame([row])
        results["in-process pyfunc"] = latency(lambda: model.predict(frame), requests)

        with mlflow_server(uri, model_uri) as url:
            body = json.dumps({"dataframe_records": [row]}).encode()
            results["mlflow models serve"] = measure_target(
                http_poster(f"{url}/invocations", body, {}), requests, clients
            )

        ensure_ray(settings, num_cpus=2, include_dashboard=False)
        store = open_store(settings.resolved_database_url)
        user = store.users.create("bench")
        _key, secret = store.api_keys.create(user.id, scopes=["models:infer"])
        auth = {"Authorization": f"Bearer {secret}"}
        from serve.models.fastpath import free_port

        proxy_port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": proxy_port})
        try:
            for replicas in (1, 2):
                serve.run(plain_serve_app(uri, model_uri, replicas), name="plain", route_prefix="/plain")
                results[f"plain Ray Serve, {replicas} replica(s)"] = measure_target(
                    http_poster(f"http://127.0.0.1:{proxy_port}/plain", records, {}), requests, clients
                )
                serve.delete("plain")
            for replicas in (1, 2):
                for batch in (1, 16):
                    request = manager.DeployRequest(
                        "iris", str(version.version), replicas=replicas, max_batch_size=batch
                    )
                    deployed = manager.deploy(settings, request)
                    label = f"rayweave fast path, {replicas} replica(s), {'batching' if batch > 1 else 'no batching'}"
                    url = f"{deployed['endpoint']}/v2/models/iris/infer"
                    results[label] = measure_target(http_poster(url, oip, auth), requests, clients)
                    manager.delete("iris")
            manager.deploy(settings, manager.DeployRequest("iris", str(version.version)))
            handle = manager.handle("iris")
            table_row = pa.Table.from_pylist([row])
            results["rayweave DeploymentHandle (Python, no HTTP)"] = latency(
                lambda: handle.predict_table.remote(table_row).result(), max(200, requests // 4)
            )
        finally:
            serve.shutdown()
            store.close()
    results["ratios"] = _ratios(results, clients)
    return results


def _ratios(results: dict[str, Any], clients: int) -> dict[str, float]:
    mlflow_p50 = results["mlflow models serve"]["p50_ms"]
    fast = results["rayweave fast path, 1 replica(s), batching"]
    plain = results["plain Ray Serve, 1 replica(s)"]
    best_batched = max(
        results[f"rayweave fast path, {n} replica(s), batching"][f"x{clients}"]["req_per_s"] for n in (1, 2)
    )
    plain_best = max(results[f"plain Ray Serve, {n} replica(s)"][f"x{clients}"]["req_per_s"] for n in (1, 2))
    return {
        "fast path p50 / mlflow p50 (target <= 1)": round(fast["p50_ms"] / mlflow_p50, 2),
        "plain Serve p50 / fast path p50": round(plain["p50_ms"] / fast["p50_ms"], 2),
        f"batched x{clients} req/s / plain Serve unbatched x{clients} req/s (best of 1-2 replicas; target >= 2)": round(
            best_batched / plain_best, 2
        ),
    }


def report(results: dict[str, Any], clients: int) -> str:
    """The figures as a text table."""
    lines = [f"{'target':<62} {'p50 ms':>8} {'p95 ms':>8} {f'x{clients} req/s':>11} {f'x{clients} p50':>9}"]
    for name, figures in results.items():
        if name == "ratios":
            continue
        many = figures.get(f"x{clients}", {})
        lines.append(
            f"{name:<62} {figures['p50_ms']:>8.2f} {figures['p95_ms']:>8.2f} "
            f"{many.get('req_per_s', float('nan')):>11.1f} {many.get('p50_ms', float('nan')):>9.2f}"
        )
    lines += [f"{name}: {value}" for name, value in results["ratios"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the figures (or JSON) and return them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure_serving(args.requests, args.clients)
    print(json.dumps(results, indent=2) if args.json else report(results, args.clients))
    return results


if __name__ == "__main__":
    main()
