"""Event latency from a node's end to a live subscriber, with and without the event bus (issue 19).

    .venv/bin/python bench/bus_bench.py [--runs 5] [--steps 20] [--seconds 0.05] [--nats nats://127.0.0.1:4222]
                                        [--database-url postgresql+psycopg://...] [--json]

Both modes run in the same process on the same store (by default a new PostgreSQL database on 127.0.0.1:5432,
dropped at the end, as a cluster would use): durable runs of a chain of `--steps` sleep nodes (`--seconds` each)
on the in-process executor, each followed by the API's live event stream (`serve.streams.follow_events`):

- poll: no bus; the stream reads the store with the API's default poll (20 ms, backing off to 250 ms while a
  run is quiet), as every replica did before the bus;
- nats: `RAYWEAVE_EVENT_BUS` is NATS JetStream; the run's sink publishes a notice after each stored batch, and
  the stream (subscribed through `serve.bus.RunNotices`, like a server) reads the store when a notice arrives.

The latency of one event is the time the subscriber receives it minus the event's `time` (when the executor made
it: the node's end), over every `node.succeeded` event. Printed: p50/p95/max per mode and the ratio of the poll
p95 to the bus p95. Target: p95 < 50 ms over the bus. The JetStream stream the bench makes is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from cluster.settings import Settings
from engine.bus import close_shared
from engine.bus.nats import NatsBus
from engine.durable.runner import DurableRunner
from engine.store import Store, open_store
from nodes.states import EventType
from serve.bus import RunNotices
from serve.config import ServeOptions
from serve.streams import follow_events

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def chain(steps: int, seconds: float) -> dict[str, Any]:
    """A chain of `steps` sleep nodes (the event stream of a run whose nodes end one after another)."""
    nodes: dict[str, Any] = {}
    previous = "$inputs.x"
    for i in range(steps):
        nodes[f"s{i}"] = {
            "type": "builtin/sleep@1",
            "in": {"value": previous},
            "params": {"seconds": seconds},
        }
        previous = f"s{i}.out"
    return {
        "format": "rayweave.workflow/1",
        "name": "bus-bench",
        "inputs": {"x": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"x": previous},
    }


async def follow(store: Store, run_id: Any, notices: RunNotices | None) -> list[float]:
    """Latencies (s) of the run's `node.succeeded` events as the API's stream delivers them."""
    poll_s = ServeOptions().event_poll_s
    latencies: list[float] = []
    async for event in follow_events(store, run_id, 0, poll_s=poll_s, notices=notices):
        if event.type == EventType.NODE_SUCCEEDED:
            latencies.append(time.time() - event.time)
    return latencies


def measure(settings: Settings, store: Store, args: argparse.Namespace, bus: bool) -> list[float]:
    """Run `args.runs` runs, each followed from its start by a stream; every latency measured."""
    runner = DurableRunner(settings, store=store, executor="local")
    notices = RunNotices.open(settings.event_bus) if bus else None
    if notices is not None:
        assert isinstance(notices.bus, NatsBus)
        if not notices.bus.wait_connected(5):
            raise SystemExit(f"NATS at {settings.event_bus} is not reachable")
    latencies: list[float] = []
    try:
        doc = chain(args.steps, args.seconds)
        runner.run(doc, {"x": 0})  # warm up: compile, connections, the publisher's bus
        for i in range(args.runs):
            handle = runner.launch(doc, {"x": i + 1}).handle
            latencies += asyncio.run(follow(store, handle.run_id, notices))
            handle.result()
    finally:
        if notices is not None:
            notices.close()
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    """p50, p95 and max in milliseconds."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "events": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.05)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument(
        "--database-url", default="", help="default: a new PostgreSQL database, dropped after"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    made = ""
    database_url = args.database_url
    if not database_url:
        made = f"rayweave_busbench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{made}"')
        database_url = f"{PG_SERVER}/{made}"
    bus_url = f"{args.nats}?prefix=rwbench_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rayweave-busbench-") as home:
            store = open_store(database_url)
            try:
                plain = Settings(home=Path(home), database_url=database_url)
                results["poll"] = summary(measure(plain, store, args, bus=False))
                on_bus = Settings(home=Path(home), database_url=database_url, event_bus=bus_url)
                results["nats"] = summary(measure(on_bus, store, args, bus=True))
            finally:
                store.close()
    finally:
        cleaner = NatsBus(bus_url)
        if cleaner.wait_connected(5):
            cleaner.delete_stream()
        cleaner.close()
        close_shared(bus_url)
        if made:
            admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')
    results["p95_ratio_poll_over_bus"] = round(
        results["poll"]["p95_ms"] / max(results["nats"]["p95_ms"], 0.1), 2
    )
    results["target_met"] = results["nats"]["p95_ms"] < 50
    if args.json:
        print(json.dumps(results))
        return
    print(f"node end -> subscriber, {args.runs} runs x {args.steps} nodes of {args.seconds} s:")
    for mode in ("poll", "nats"):
        r = results[mode]
        print(
            f"  {mode:5} p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  ({r['events']} events)"
        )
    print(
        f"  p95 poll / bus: {results['p95_ratio_poll_over_bus']}x; target p95 < 50 ms over the bus: "
        f"{'met' if results['target_met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
