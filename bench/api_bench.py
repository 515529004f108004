"""Benchmark of the HTTP API: the same FastAPI app served by plain uvicorn and by Ray Serve, in one process run.

For each server: 16 concurrent clients submit and wait for 400 small runs (each with its own Idempotency-Key;
afterwards the store must hold exactly 400 distinct succeeded runs: 0 lost, 0 duplicated), runs completed per
second, p50/p95 latency of `POST /v1/runs` and `GET /v1/runs/{id}`, and the event latency from a node
finishing (the engine's event time) to a WebSocket client receiving the event (target p95 < 100 ms).

    .venv/bin/python bench/api_bench.py [--runs 400] [--clients 16] [--executor local|ray] [--json]

Runs execute in the API process ("local", the default: isolates the cost of the API) or on Ray ("ray").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workloads import sleep_chain

ADD = {
    "format": "rayweave.workflow/1",
    "name": "bench-add",
    "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
    "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}}},
    "outputs": {"total": "sum"},
}


def chain(steps: int, seconds: float) -> dict[str, Any]:
    """A chain of sleep nodes: events arrive while the run is live."""
    return sleep_chain(steps, seconds)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def submit_and_wait(url: str, key: str, runs: int, clients: int, tag: str) -> dict[str, Any]:
    import httpx

    post_s: list[float] = []
    get_s: list[float] = []
    ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(runs):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = {"workflow": ADD, "inputs": {"a": i, "b": hash(tag) % 1000}}
            started = time.perf_counter()
            r = await client.post("/v1/runs", json=body, headers={"Idempotency-Key": f"{tag}-{i}"})
            post_s.append(time.perf_counter() - started)
            r.raise_for_status()
            run_id = r.json()["id"]
            while True:
                started = time.perf_counter()
                status = (await client.get(f"/v1/runs/{run_id}")).json()["status"]
                get_s.append(time.perf_counter() - started)
                if status in ("succeeded", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.02)
            ids.append(run_id)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "runs": runs,
        "elapsed_s": elapsed,
        "runs_per_s": runs / elapsed,
        "post_p50_ms": pct(post_s, 0.5),
        "post_p95_ms": pct(post_s, 0.95),
        "get_p50_ms": pct(get_s, 0.5),
        "get_p95_ms": pct(get_s, 0.95),
        "ids": ids,
    }


async def event_latency(url: str, key: str, runs: int, tag: str) -> dict[str, float]:
    import httpx
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    ws_base = url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        for i in range(runs):
            r = await client.post(
                "/v1/runs", json={"workflow": chain(3, 0.05), "inputs": {"x": i + hash(tag) % 10_000}}
            )
            run_id = r.json()["id"]
            async with connect(f"{ws_base}/v1/runs/{run_id}/events", additional_headers=headers) as ws:
                async for message in ws:
                    received = time.time()
                    event = json.loads(message)
                    if event["type"] == "node.succeeded":
                        latencies.append(received - event["time"])
    return {
        "events": len(latencies),
        "event_p50_ms": pct(latencies, 0.5),
        "event_p95_ms": pct(latencies, 0.95),
    }


def check_store(store: Any, ids: list[str], runs: int) -> dict[str, int]:
    rows = [store.runs.get(run_id) for run_id in set(ids)]
    return {
        "distinct_runs": len(set(ids)),
        "lost": runs - len(set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "succeeded": sum(r.status == "succeeded" for r in rows),
    }


def measure(url: str, key: str, store: Any, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    result = asyncio.run(submit_and_wait(url, key, args.runs, args.clients, tag))
    result.update(check_store(store, result.pop("ids"), args.runs))
    result.update(asyncio.run(event_latency(url, key, args.event_runs, tag)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--event-runs", type=int, default=20)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--uvicorn-only", action="store_true", help="Skip Ray Serve (profiling the app).")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.store import open_store
    from serve.app import create_app
    from serve.bootstrap import ensure_admin_key
    from serve.config import ServeOptions
    from serve.deployment import deploy, undeploy

    home = Path(tempfile.mkdtemp(prefix="rayweave-api-bench-"))
    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    key = ensure_admin_key(store, home) or (home / "admin.key").read_text().strip()
    options = ServeOptions(executor=args.executor, rate_per_s=1e6, burst=1_000_000, print_admin_key=False)
    ensure_ray(settings, include_dashboard=False)
    results: dict[str, Any] = {"config": vars(args)}
    try:
        with uvicorn_server(create_app(settings, store=store, options=options)) as url:
            results["uvicorn"] = measure(url, key, store, args, "uvicorn")
        if args.uvicorn_only:
            print(json.dumps(results, indent=2))
            return
        url = deploy(settings, options, host="127.0.0.1", port=free_port(), num_replicas=args.replicas)
        try:
            results["ray_serve"] = measure(url, key, store, args, "serve")
        finally:
            undeploy()
    finally:
        shutdown_ray()
        store.close()
    u, s = results["uvicorn"], results["ray_serve"]
    results["serve_over_uvicorn"] = {
        "runs_per_s": s["runs_per_s"] / u["runs_per_s"],
        "post_p50": s["post_p50_ms"] / u["post_p50_ms"],
        "get_p50": s["get_p50_ms"] / u["get_p50_ms"],
        "event_p95": s["event_p95_ms"] / u["event_p95_ms"],
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'':24}{'uvicorn':>12}{'ray serve':>12}")
    for name in (
        "runs_per_s",
        "post_p50_ms",
        "post_p95_ms",
        "get_p50_ms",
        "get_p95_ms",
        "event_p50_ms",
        "event_p95_ms",
        "distinct_runs",
        "lost",
        "duplicated",
        "succeeded",
    ):
        print(f"{name:24}{u[name]:>12.1f}{s[name]:>12.1f}")
    print("ray serve / uvicorn:", {k: round(v, 2) for k, v in results["serve_over_uvicorn"].items()})


if __name__ == "__main__":
    main()
