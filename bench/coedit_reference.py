"""Co-editing through rayweave against the JavaScript reference server, measured by the same clients in one run.

The clients are Node.js y-websocket 3.1 providers (`serve/ui/web/scripts/collab-client.mjs bench`: the page's
own Yjs and y-websocket): two clients on one document, A changes one value and B waits until it sees it (50
edits of warm-up, then `edits` measured: p50/p95/p99 ms); then `joins` late joiners connect and sync the
document (p50/p95 ms). The servers, each a process of its own: rayweave's `WS /v1/workflows/{id}/collab`
(uvicorn, `bench/collab_bench.py --serve rayweave`) and the JavaScript reference server `@y/websocket-server`
0.1.1 (the version matching yjs 13; `../shared/FACTS.md`), pinned by `bench/yjs_reference/package-lock.json`
and installed on first use into build/yjs-reference (`npm ci`: its optional y-leveldb too, which the server
imports whether or not it persists). Runs alternate between the
two servers, so both see the same machine; the load average is reported.

    .venv/bin/python bench/coedit_reference.py [--edits 500] [--joins 20] [--runs 3] [--json]

`bench/ui_bench.py --coedit-runs N` runs it too and prints its figures with the page's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
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

REFERENCE_PACKAGE = ROOT / "bench" / "yjs_reference"
REFERENCE_INSTALL = ROOT / "build" / "yjs-reference"
CLIENT = ROOT / "serve" / "ui" / "web" / "scripts" / "collab-client.mjs"


def _node() -> list[str]:
    """The node command with a global WebSocket (Node.js 22 has one; 20 needs the flag)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js is needed (it builds the web UI too)")
    has = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], check=False)
    return [node, "--no-warnings"] + ([] if has.returncode == 0 else ["--experimental-websocket"])


def install_reference() -> Path:
    """build/yjs-reference holding the reference server at the pinned versions (installed when the lock changed)."""
    lock = REFERENCE_PACKAGE / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = REFERENCE_INSTALL / "node_modules" / ".installed"
    if not stamp.is_file() or stamp.read_text() != digest:
        REFERENCE_INSTALL.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(REFERENCE_PACKAGE / name, REFERENCE_INSTALL / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=REFERENCE_INSTALL,
            check=True,
        )
        stamp.write_text(digest)
    return REFERENCE_INSTALL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def reference_server() -> Iterator[str]:
    """The JavaScript reference server on a free loopback port; yields its ws:// URL."""
    where = install_reference()
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOST": "127.0.0.1", "PORT": str(port)}
    process = subprocess.Popen(
        [*_node(), "node_modules/@y/websocket-server/src/server.js"],
        cwd=where,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the reference server did not start") from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def clients(url: str, room: str, key: str | None, edits: int, joins: int) -> dict[str, list[float]]:
    """One measurement by the Node.js clients on the room `room` at `url`: edit and join latencies (ms)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if key:
        env["RAYWEAVE_API_KEY"] = key
    done = subprocess.run(
        [*_node(), str(CLIENT), "bench", url, room, str(edits), str(joins)],
        cwd=CLIENT.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Node.js clients failed on {url}: {done.stderr.strip()}")
    figures: dict[str, list[float]] = json.loads(done.stdout)
    return figures


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def measure(edits: int = 500, joins: int = 20, runs: int = 3) -> dict[str, Any]:
    """Both servers, `runs` alternating runs each; medians over the runs of each quantile, and the load."""
    import httpx

    from bench.collab_bench import DOCUMENT, server

    load_before = os.getloadavg()
    per_run: dict[str, list[dict[str, dict[str, float]]]] = {"rayweave": [], "reference": []}
    with tempfile.TemporaryDirectory() as tmp, reference_server() as reference_url:
        home = Path(tmp) / "home"
        with server("rayweave", home) as rayweave_url:
            deadline = time.monotonic() + 30
            while not (home / "admin.key").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            key = (home / "admin.key").read_text().strip()
            http_url = rayweave_url.replace("ws://", "http://")
            with httpx.Client(base_url=http_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                ids = [
                    c.post("/v1/workflows", json={"workflow": DOCUMENT}).json()["workflow_id"]
                    for _ in range(runs)
                ]
            for run in range(runs):
                for kind, url, room, token in (
                    ("reference", reference_url, f"bench-room-{run}", None),
                    ("rayweave", f"{rayweave_url}/v1/workflows/{ids[run]}", "collab", key),
                ):
                    got = clients(url, room, token, edits, joins)
                    per_run[kind].append(
                        {"edit_ms": _quantiles(got["edit_ms"]), "join_ms": _quantiles(got["join_ms"])}
                    )
    load_after = os.getloadavg()

    def median(kind: str) -> dict[str, dict[str, float]]:
        return {
            what: {
                q: round(statistics.median(r[what][q] for r in per_run[kind]), 3)
                for q in ("p50", "p95", "p99")
            }
            for what in ("edit_ms", "join_ms")
        }

    return {
        "edits": edits,
        "joins": joins,
        "runs": runs,
        "rayweave": median("rayweave"),
        "reference": median("reference"),
        "per_run": per_run,
        "load_average": {"before": load_before, "after": load_after},
    }


def report(result: dict[str, Any]) -> list[str]:
    """Lines of text for a result of `measure`."""
    lines = [
        f"co-editing, Node.js y-websocket clients, {result['edits']} edits and {result['joins']} late joiners "
        f"x {result['runs']} runs (median of runs), ms:"
    ]
    for name, kind in (("rayweave /collab", "rayweave"), ("JS reference server", "reference")):
        e, j = result[kind]["edit_ms"], result[kind]["join_ms"]
        lines.append(
            f"  {name:20s} edit p50 {e['p50']:6.2f} p95 {e['p95']:6.2f} p99 {e['p99']:6.2f}"
            f"   late joiner sync p50 {j['p50']:6.1f} p95 {j['p95']:6.1f}"
        )
    load = result["load_average"]
    lines.append(
        "  load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
            *load["before"], *load["after"]
        )
    )
    return lines


def main() -> None:
    """Measure and print (or print JSON)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=500)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.edits, args.joins, args.runs)
    print(json.dumps(result, indent=1) if args.json else "\n".join(report(result)))


if __name__ == "__main__":
    main()
