"""Benchmark of live co-editing: edit on client A -> seen on client B, through rayweave's collaboration route
and through a plain pycrdt-websocket server, in one process run (each server in its own process on uvicorn).

For each server and run: two clients on one document; A changes one value, B waits until it sees it; 500 such
edits after 50 of warm-up give p50/p95/p99 in ms. Then a late joiner connects and syncs the document 20 times
(p50/p95 ms). The ratio of rayweave to plain is printed with the load average, since the machine is shared.
The yardstick (`../shared/FACTS.md`, quiet machine): plain pycrdt-websocket on uvicorn 1.59/3.19/6.00 ms, the
JavaScript server 1.28/2.50/4.92 ms.

    .venv/bin/python bench/collab_bench.py [--edits 500] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCUMENT = {
    "format": "rayweave.workflow/1",
    "name": "bench-collab",
    "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
    "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}}},
    "outputs": {"total": "sum"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the servers (run as `collab_bench.py --serve plain|rayweave --port P [--home H]`) ----------------------


def serve_plain(port: int) -> None:
    """A plain pycrdt-websocket server on uvicorn (its `WebsocketServer` in a task of its own)."""
    import uvicorn
    from pycrdt.websocket import ASGIServer, WebsocketServer

    websocket_server = WebsocketServer()
    websocket_app = ASGIServer(websocket_server)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            task = None
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    task = asyncio.create_task(websocket_server.start())
                    await websocket_server.started.wait()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await websocket_server.stop()
                    if task is not None:
                        await task
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await websocket_app(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


def serve_rayweave(port: int, home: Path) -> None:
    """rayweave's API (SQLite in `home`) on uvicorn."""
    import uvicorn

    from cluster.settings import Settings
    from serve.app import create_app
    from serve.config import ServeOptions

    app = create_app(
        Settings(home=home),
        options=ServeOptions(executor="local", print_admin_key=False, rate_per_s=100_000, burst=100_000),
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


@contextmanager
def server(kind: str, home: Path) -> Iterator[str]:
    """Start a server process of `kind`; yields its base URL (ws://...)."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--home", str(home)]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


# -- the clients -------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


async def _measure(room_url: str, headers: dict[str, str], edits: int, joins: int) -> dict[str, Any]:
    from serve.collab.client import CollabClient

    # A joins before B: the plain server's room-open race (FACTS) would otherwise leave B unsynced.
    async with CollabClient.connect_url(room_url, headers=headers) as a:
        await asyncio.wait_for(a.synced.wait(), 10)
        async with CollabClient.connect_url(room_url, headers=headers) as b:
            await asyncio.wait_for(b.synced.wait(), 10)
            edit_ms = await _edit_latencies(a, b, edits)
        join_ms: list[float] = []
        for _ in range(joins):  # a late joiner syncs the whole document (A stays, so the room stays open)
            start = time.perf_counter()
            async with CollabClient.connect_url(room_url, headers=headers) as late:
                await asyncio.wait_for(late.synced.wait(), 10)
                join_ms.append((time.perf_counter() - start) * 1000)
    return {"edit_ms": _percentiles(edit_ms), "join_ms": _percentiles(join_ms)}


async def _edit_latencies(a: Any, b: Any, edits: int) -> list[float]:
    """A sets one value, B waits until it sees it: 50 warm-up edits, then `edits` measured (ms)."""
    from pycrdt import Map

    target_a, target_b = a.doc.get("bench", type=Map), b.doc.get("bench", type=Map)
    latencies: list[float] = []
    for i in range(50 + edits):
        value = float(i)
        start = time.perf_counter()
        target_a["k"] = value
        await b.until(lambda value=value: target_b.get("k") == value, timeout=10)
        if i >= 50:
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def measure_plain(url: str, edits: int, joins: int, run: int) -> dict[str, Any]:
    """Edit latency through the plain pycrdt-websocket server."""
    return asyncio.run(_measure(f"{url}/bench-room-{run}", {}, edits, joins))


def measure_rayweave(url: str, home: Path, edits: int, joins: int) -> dict[str, Any]:
    """Edit latency through `WS /v1/workflows/{id}/collab` (a new workflow per run)."""
    import httpx

    deadline = time.monotonic() + 30
    while not (home / "admin.key").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    key = (home / "admin.key").read_text().strip()
    http_url = url.replace("ws://", "http://")
    with httpx.Client(base_url=http_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        workflow_id = c.post("/v1/workflows", json={"workflow": DOCUMENT}).json()["workflow_id"]
    room = f"{url}/v1/workflows/{workflow_id}/collab"
    return asyncio.run(_measure(room, {"Authorization": f"Bearer {key}"}, edits, joins))


def main() -> None:
    """Run the benchmark (or, with --serve, one of its servers)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=500)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=["plain", "rayweave"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "plain":
        serve_plain(args.port)
        return
    if args.serve == "rayweave":
        serve_rayweave(args.port, args.home)
        return

    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "rayweave": []}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        with server("plain", home) as plain_url, server("rayweave", home) as rayweave_url:
            for run in range(args.runs):  # interleaved, so both see the same machine
                runs["plain"].append(measure_plain(plain_url, args.edits, args.joins, run))
                runs["rayweave"].append(measure_rayweave(rayweave_url, home, args.edits, args.joins))
    load_after = os.getloadavg()

    def summary(kind: str) -> dict[str, Any]:
        median = {
            what: {q: statistics.median(r[what][q] for r in runs[kind]) for q in ("p50", "p95", "p99")}
            for what in ("edit_ms", "join_ms")
        }
        return {"median_of_runs": median, "runs": runs[kind]}

    result = {
        "edits": args.edits,
        "runs": args.runs,
        "plain_pycrdt_websocket": summary("plain"),
        "rayweave": summary("rayweave"),
        "load_average": {"before": load_before, "after": load_after},
        "yardstick_facts_ms": {"plain_uvicorn": [1.59, 3.19, 6.00], "javascript": [1.28, 2.50, 4.92]},
    }
    plain, ours = result["plain_pycrdt_websocket"]["median_of_runs"], result["rayweave"]["median_of_runs"]
    result["ratio_rayweave_over_plain"] = {
        q: round(ours["edit_ms"][q] / plain["edit_ms"][q], 2) for q in ("p50", "p95", "p99")
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"edit A -> seen by B, {args.edits} edits x {args.runs} runs (median of runs), ms:")
    for name, figures in (("plain pycrdt-websocket", plain), ("rayweave /collab", ours)):
        e = figures["edit_ms"]
        j = figures["join_ms"]
        print(
            f"  {name:24s} p50 {e['p50']:6.2f}  p95 {e['p95']:6.2f}  p99 {e['p99']:6.2f}"
            f"   late joiner sync p50 {j['p50']:6.1f} p95 {j['p95']:6.1f}"
        )
    ratio = result["ratio_rayweave_over_plain"]
    print(f"  ratio rayweave / plain  p50 {ratio['p50']}x  p95 {ratio['p95']}x  p99 {ratio['p99']}x")
    print(
        "  FACTS yardstick (quiet machine): plain on uvicorn 1.59/3.19/6.00, JavaScript server 1.28/2.50/4.92"
    )
    print(
        "  load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f} (2 cores)".format(
            *load_before, *load_after
        )
    )


if __name__ == "__main__":
    main()
