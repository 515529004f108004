"""Benchmark of the web UI in Debian's Chromium headless (Playwright), against the API served on loopback.

Measures: the bundle's size (gzip: the page's own files, and elkjs, loaded when the first graph is laid out);
what a first visit to the workflow page downloads (a fresh browser, nothing cached; assets gzip as the server
sends them) to draw its graph (elkjs's worker aside: downloaded beside it, compiled after it), and in all once
elkjs has laid it out;
the workflow page from navigation to its graph drawn (median of `--repeat` loads; target < 1 s); a workflow of
`--nodes` nodes (default 1,000) from navigation to first drawn (the quick layout) and to laid out by elkjs (its
fan-outs folded into groups), drawn in view and settled (target < 2 s), with the time the page's main thread was busy meanwhile (Chrome's TaskDuration:
running tasks, not idle waiting for the layout worker or the server), then one group expanded by a click
until settled again; and, on the run page, the latency from a node's `node.succeeded` event (the engine's
event time) to the page showing it (a MutationObserver on the node's state; target p95 < 100 ms) over a
chain of `--steps` nodes: alone, and during a run of `--nodes` more nodes (`--nodes / --steps` fanned out
from each step, all summed, their events arriving in the same frames).

    .venv/bin/python bench/ui_bench.py [--nodes 1000] [--steps 40] [--step-s 0.2] [--repeat 5] [--json]

Needs the built bundle (`make ui`) and /usr/bin/chromium. Runs execute in the API process (local executor).

Then co-editing: edit propagation between two clients (p50/p95/p99) and late-joiner sync (p50/p95) through
rayweave's collaboration route and through the JavaScript reference server, in the same run
(`bench/coedit_reference.py`, Node.js y-websocket clients; `--coedit-runs 0` leaves it out).
"""

from __future__ import annotations

import argparse
import gzip
import json
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

# Playwright adds its own default arguments, among them --disable-background-timer-throttling,
# --disable-backgrounding-occluded-windows and --disable-renderer-backgrounding (seen on the command line of the
# Chromium it starts): the page measured is never throttled as a background tab (docs/guides/web-ui.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pct(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def small() -> dict[str, Any]:
    """A workflow of two nodes."""
    return {
        "format": "rayweave.workflow/1",
        "name": "bench-small",
        "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
        "nodes": {
            "sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}},
            "neg": {"type": "builtin/negate@1", "in": {"x": "sum.out"}},
        },
        "outputs": {"total": "neg.out"},
    }


def layered(count: int, width: int = 25) -> dict[str, Any]:
    """`count` add nodes in layers of `width`, each wired to two nodes of the layer before."""
    nodes: dict[str, Any] = {}
    for i in range(count):
        layer, column = divmod(i, width)
        if layer == 0:
            wiring: dict[str, Any] = {"a": "$inputs.a", "b": {"value": column}}
        else:
            before = (layer - 1) * width
            wiring = {"a": f"n{before + column}.out", "b": f"n{before + (column + 1) % width}.out"}
        nodes[f"n{i}"] = {"type": "builtin/add@1", "in": wiring}
    return {
        "format": "rayweave.workflow/1",
        "name": f"bench-{count}",
        "inputs": {"a": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"last": f"n{count - 1}.out"},
    }


def chain(steps: int, seconds: float) -> dict[str, Any]:
    """A chain of sleep nodes, so node events arrive one by one while the page watches."""
    nodes = {
        f"s{i}": {
            "type": "builtin/sleep@1",
            "in": {"value": "$inputs.x" if i == 0 else f"s{i - 1}.out"},
            "params": {"seconds": seconds},
        }
        for i in range(steps)
    }
    return {
        "format": "rayweave.workflow/1",
        "name": "bench-chain",
        "inputs": {"x": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"x": f"s{steps - 1}.out"},
    }


def chain_with_fan(steps: int, seconds: float, nodes: int) -> dict[str, Any]:
    """`chain(steps, seconds)` plus `nodes` add nodes, as many fanned out from each step: a run of 1,000+ nodes
    whose fan-out events arrive while the chain's are measured."""
    doc = chain(steps, seconds)
    doc["name"] = f"bench-chain-{nodes}"
    for i in range(nodes):
        doc["nodes"][f"f{i}"] = {"type": "builtin/add@1", "in": {"a": f"s{i % steps}.out", "b": {"value": i}}}
    # An output reads every fan-out node (a list of references), or the compiler would prune them.
    doc["nodes"]["total"] = {"type": "builtin/sum@1", "in": {"values": [f"f{i}.out" for i in range(nodes)]}}
    doc["outputs"]["total"] = "total.out"
    return doc


@contextmanager
def served(home: Path) -> Iterator[tuple[str, str]]:
    """The API on a free loopback port (in-process executor); yields its URL and the admin key."""
    import uvicorn

    from cluster.settings import Settings
    from engine.store import open_store
    from serve.app import create_app
    from serve.config import ServeOptions

    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(executor="local", print_admin_key=False, rate_per_s=10_000, burst=10_000)
    app = create_app(settings, store=store, options=options)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", (home / "admin.key").read_text().strip()
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def bundle_sizes() -> dict[str, float]:
    """KB gzip of the page's own files and of elkjs's chunk."""
    from serve.ui import BUNDLE_DIR

    sizes = {"page_kb": 0.0, "elk_kb": 0.0}
    for path in (BUNDLE_DIR / "assets").iterdir():
        kb = len(gzip.compress(path.read_bytes(), 9)) / 1024
        sizes["elk_kb" if path.name.startswith("elk") else "page_kb"] += kb
    sizes["page_kb"] += len(gzip.compress((BUNDLE_DIR / "index.html").read_bytes(), 9)) / 1024
    return sizes


def first_load(browser: Any, url: str, key: str, workflow_id: str) -> dict[str, Any]:
    """KB a first visit to the workflow page downloads (a new browser context: nothing cached), before its
    graph is drawn and in all once elkjs laid it out; the bundle's files as the server sends them (gzip), the
    API's answers as they came."""
    from serve.ui import BUNDLE_DIR

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    context.request.post(f"{url}/ui/api/session", data={"api_key": key}, headers={"Origin": url})
    done: list[tuple[float, str, int]] = []

    def finished(request: Any) -> None:
        path = request.url[len(url) :].split("?")[0]
        asset = BUNDLE_DIR / path.removeprefix("/ui/") if path.startswith("/ui/assets/") else None
        if asset is not None and asset.is_file():
            raw = asset.read_bytes()
            size = len(gzip.compress(raw, 9, mtime=0)) if len(raw) >= 1024 else len(raw)
        else:
            size = int(request.sizes()["responseBodySize"])
        done.append((time.perf_counter(), path, size))

    context.on("requestfinished", finished)
    page = context.new_page()
    page.goto(f"{url}/ui/workflows/{workflow_id}")
    page.get_by_test_id("node-neg").wait_for()
    drawn = time.perf_counter()
    page.locator("[data-testid='graph'][data-settled='true']").wait_for()
    context.close()

    def kb(rows: list[tuple[float, str, int]], assets: bool) -> float:
        # A file read twice (elkjs's worker: prefetched, then from the HTTP cache) is downloaded once.
        sizes = {path: n for _, path, n in rows if path.startswith("/ui/") == assets}
        return sum(sizes.values()) / 1024

    # elkjs's worker is downloaded at low priority beside the page's requests and compiled once the graph is
    # drawn: whether its download ended before or after the drawing, the drawing did not wait for it.
    before = [r for r in done if r[0] <= drawn and "elk-worker" not in r[1]]
    return {
        "assets_before_drawn_kb": kb(before, True),
        "assets_in_all_kb": kb(done, True),
        "api_before_drawn_kb": kb(before, False),
        "elk_before_drawn": any("elk-worker" in path and n > 1024 and at <= drawn for at, path, n in done),
    }


# Records when the page's sockets receive each node.succeeded event (before the page handles it), so the
# latency splits into server to socket and socket to screen.
RECEIVED = """
(() => {
  window.__received = {};
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (m) => {
        try {
          const e = JSON.parse(m.data);
          if (e.type === "node.succeeded" && !(("node-" + e.node) in window.__received))
            window.__received["node-" + e.node] = performance.timeOrigin + performance.now();
        } catch (err) {}
      });
    }
  };
})();
"""

OBSERVER = """
() => {
  window.__seen = {};
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const r of records) {
      const el = r.target;
      if (el.dataset && el.dataset.status === "succeeded" && el.dataset.testid && !(el.dataset.testid in window.__seen)) {
        window.__seen[el.dataset.testid] = now;
      }
    }
  }).observe(document.body, { attributes: true, attributeFilter: ["data-status"], subtree: true });
}
"""


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of the benchmark, in one process run."""
    import httpx
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"bundle": bundle_sizes()}
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp) / "home") as (url, key):
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        ids = {
            name: api.post("/v1/workflows", json={"workflow": doc}).json()["workflow_id"]
            for name, doc in (
                ("small", small()),
                ("big", layered(args.nodes)),
                ("chain", chain(args.steps, args.step_s)),
                ("chain_fan", chain_with_fan(args.steps, args.step_s, args.nodes)),
            )
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            context.request.post(f"{url}/ui/api/session", data={"api_key": key}, headers={"Origin": url})
            results["first_load"] = first_load(browser, url, key, ids["small"])
            page = context.new_page()
            page.goto(f"{url}/ui/workflows/{ids['small']}")  # warm the HTTP cache, as a returning user has
            page.get_by_test_id("node-neg").wait_for()
            loads = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                page.goto(f"{url}/ui/workflows/{ids['small']}")
                page.get_by_test_id("node-neg").wait_for()
                loads.append(time.perf_counter() - started)
            results["workflow_page_s"] = {"median": pct(loads, 0.5), "max": max(loads)}
            big, big_first, big_busy, big_layout, drawn, expand = [], [], [], [], 0, []
            for _ in range(max(1, args.repeat // 2)):
                # A fresh page each time: Chrome's TaskDuration (time the main thread spent running tasks, not
                # idle waiting for the layout worker or the server) counts from the page's start.
                fresh = context.new_page()
                cdp = context.new_cdp_session(fresh)
                cdp.send("Performance.enable")
                started = time.perf_counter()
                fresh.goto(f"{url}/ui/workflows/{ids['big']}")
                # First drawn (the quick layout, before elkjs's), then laid out by elkjs, the view fitted and
                # settled (what a person can click and drag without the boxes moving).
                fresh.locator(".react-flow__node").first.wait_for()
                big_first.append(time.perf_counter() - started)
                fresh.locator("[data-testid='graph'][data-settled='true']").wait_for()
                big.append(time.perf_counter() - started)
                drawn = int(fresh.get_by_test_id("graph").get_attribute("data-nodes") or 0)
                layout_ms = fresh.evaluate(
                    "Math.max(0, ...performance.getEntriesByName('rw-layout').map((m) => m.duration))"
                )
                big_layout.append(layout_ms / 1000)
                metrics = cdp.send("Performance.getMetrics")["metrics"]
                big_busy.append(float(next(m["value"] for m in metrics if m["name"] == "TaskDuration")))
                # Usable: a click on the first group draws its members, laid out again and settled.
                group = fresh.locator("[data-testid^='node-n0…']")
                if group.count():
                    started = time.perf_counter()
                    group.first.locator(".rw-node-header").click()
                    fresh.get_by_test_id("node-n0").wait_for()
                    fresh.locator("[data-testid='graph'][data-settled='true']").wait_for()
                    expand.append(time.perf_counter() - started)
                fresh.close()
            results["big_workflow_s"] = {
                "nodes": args.nodes,
                "median": pct(big, 0.5),
                "max": max(big),
                "first_drawn": pct(big_first, 0.5),
                "main_thread_busy": pct(big_busy, 0.5),
                "layout": pct(big_layout, 0.5),
                "drawn_nodes": drawn,
                "expand_group_s": pct(expand, 0.5) if expand else None,
            }
            # Event to paint: the page is open on the run before its first node finishes.
            page.add_init_script(RECEIVED)
            results["event_to_paint_ms"] = event_to_paint(api, page, url, ids["chain"])
            results["event_to_paint_big_ms"] = event_to_paint(api, page, url, ids["chain_fan"])
            context.close()
            browser.close()
    return results


def event_to_paint(api: Any, page: Any, url: str, workflow_id: str) -> dict[str, Any]:
    """Latencies from each `node.succeeded` event (the engine's time) to the page showing it, for a run of
    `workflow_id` started before the page opens on it (the page follows it from its first event)."""
    run_id = api.post("/v1/runs", json={"workflow_id": workflow_id, "inputs": {"x": 1}}).json()["id"]
    page.goto(f"{url}/ui/runs/{run_id}")
    page.get_by_test_id("graph").wait_for()
    page.evaluate(OBSERVER)
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    seen: dict[str, float] = page.evaluate("window.__seen")
    events = api.get(f"/v1/runs/{run_id}/events", params={"after": 0}, timeout=60).text
    finished = {}
    total = 0
    for block in events.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                total += 1
                if event["type"] == "node.succeeded":
                    finished[f"node-{event['node']}"] = event["time"] * 1000
    latencies = [seen[k] - finished[k] for k in seen if k in finished]
    received: dict[str, float] = page.evaluate("window.__received")
    in_page = [seen[k] - received[k] for k in seen if k in received]
    # Batches of events the browser gave no animation frame for within 100 ms (src/eventBatch.ts).
    late = int(page.evaluate("performance.getEntriesByName('rw-frame-late').length"))
    return {
        "count": len(latencies),
        "events": total,
        "late_frames": late,
        "p50": pct(latencies, 0.5) if latencies else None,
        "p95": pct(latencies, 0.95) if latencies else None,
        "socket_to_paint_p50": pct(in_page, 0.5) if in_page else None,
        "socket_to_paint_p95": pct(in_page, 0.95) if in_page else None,
    }


def main() -> None:
    """Parse arguments, measure, print a table (or JSON)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--step-s", type=float, default=0.2, help="seconds each node of the chain sleeps")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--coedit-runs", type=int, default=3, help="co-editing runs per server (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure(args)
    if args.coedit_runs:
        from bench.coedit_reference import measure as measure_coediting

        results["co_editing"] = measure_coediting(runs=args.coedit_runs)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    b = results["bundle"]
    print(
        f"bundle (gzip)            page {b['page_kb']:.0f} KB + elkjs {b['elk_kb']:.0f} KB (loaded for layout)"
    )
    f = results["first_load"]
    print(
        f"first visit (gzip)       {f['assets_before_drawn_kb']:.0f} KB of bundle to draw the graph, "
        f"{f['assets_in_all_kb']:.0f} KB in all with elkjs (its download ended "
        f"{'before' if f['elk_before_drawn'] else 'after'} the drawing, which does not wait for it); "
        f"API answers before drawn {f['api_before_drawn_kb']:.0f} KB"
    )
    w = results["workflow_page_s"]
    print(f"workflow page to graph   median {w['median'] * 1000:.0f} ms, max {w['max'] * 1000:.0f} ms")
    g = results["big_workflow_s"]
    print(
        f"{g['nodes']}-node workflow settled median {g['median']:.2f} s, max {g['max']:.2f} s, first drawn "
        f"{g['first_drawn']:.2f} s "
        f"({g['drawn_nodes']} boxes drawn; page main thread busy {g['main_thread_busy']:.2f} s; waiting for "
        f"elkjs in its worker {g['layout']:.2f} s)"
    )
    if g["expand_group_s"] is not None:
        print(f"  a group expanded         median {g['expand_group_s']:.2f} s (click to settled)")
    for key, label in (("event_to_paint_ms", "alone"), ("event_to_paint_big_ms", "in a big run")):
        e = results[key]
        if not e["count"]:
            continue
        print(
            f"event to painted state   {label}: p50 {e['p50']:.1f} ms, p95 {e['p95']:.1f} ms "
            f"({e['count']} nodes measured, a run of {e['events']} events)"
        )
        if e["socket_to_paint_p50"] is not None:
            print(
                f"  of which in the page     p50 {e['socket_to_paint_p50']:.1f} ms, "
                f"p95 {e['socket_to_paint_p95']:.1f} ms (socket message to painted state); "
                f"{e['late_frames']} batches waited 100 ms for a frame that did not come"
            )
    if "co_editing" in results:
        from bench.coedit_reference import report

        print("\n".join(report(results["co_editing"])))


if __name__ == "__main__":
    main()
