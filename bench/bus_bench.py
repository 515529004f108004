"""Event latency from a node's end to a live subscriber, with and without the event bus (issue 19).

    .venv/bin/python bench/bus_bench.py [--runs 5] [--steps 20] [--seconds 0.05] [--nats nats://127.0.0.1:4222]
                                        [--database-url postgresql+psycopg://...] [--address HOST:6379]
                                        [--multihost [--wait-s 1800]] [--json]

Both modes run in the same process on the same store (by default a new PostgreSQL database on 127.0.0.1:5432,
dropped at the end, as a cluster would use): durable runs of a chain of `--steps` sleep nodes (`--seconds` each),
each followed by the API's live event stream (`serve.streams.follow_events`):

- poll: no bus; the stream reads the store with the API's default poll (20 ms, backing off to 250 ms while a
  run is quiet), as every replica did before the bus;
- nats: `RAYWEAVE_EVENT_BUS` is NATS JetStream; the run's sink publishes a notice after each stored batch, and
  the stream (subscribed through `serve.bus.RunNotices`, like a server) reads the store when a notice arrives.

Where the runs execute:

- by default on the in-process executor, all on this host;
- `--address HOST:PORT`: on that Ray cluster (executor "ray": the nodes run on its workers, the run's coordinator
  publishes the notices from wherever Ray placed it), this process being the subscriber;
- `--multihost` (root): across hosts, on the multi-host harness (`cluster/multihost.py`): a Ray head without CPUs
  and two worker hosts of one CPU each, each in its own network namespace; this machine's PostgreSQL and NATS
  are reached from the hosts through the harness's forwarders at its bridge address, and the bench itself runs
  on the head host with `--address`: the subscriber is on the head, every node on a worker host. It first waits
  (up to `--wait-s`) while another process's harness is up, so as not to load the machine under it.

The latency of one event is the time the subscriber receives it minus the event's `time` (when the executor made
it: the node's end; every host shares this machine's clock), over every `node.succeeded` event. Printed: p50/p95/
max per mode; for the bus, also from the node's end to its notice reaching the subscriber's process (the rest
is the stream's read of the store); the ratio of the poll p95 to the bus p95; the load average; and with Ray the
hosts the nodes, the subscriber and the run coordinators ran on. Target: p95 < 50 ms over the bus. The
JetStream stream the bench makes is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.workloads import sleep_chain
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
REPO = Path(__file__).resolve().parents[1]
#: Memory (bytes) each node asks for on Ray. `builtin/sleep` is I/O-bound, so on Ray it would run on the I/O
#: pool's actors, which hold no CPU and may sit on any host, the subscriber's too; a node asking for memory runs
#: as a Ray task instead, which needs a CPU: on the harness, a worker host.
TASK_MEMORY = 1 << 20


class Seen(NamedTuple):
    """One `node.succeeded` event at the subscriber: seconds from the node's end to the stream sending it
    (`latency`) and to the bus's notice of it reaching this process (`noticed`, bus mode only), and the host the
    node ran on (with Ray, else "")."""

    latency: float
    host: str
    noticed: float | None


class NoticeClock:
    """When each run notice reached this process: a second subscription to `runs.*` on the stream's bus, so the
    bus mode's latency splits into node end -> notice here, and notice -> event sent (the stream's store read)."""

    def __init__(self, bus: Any) -> None:
        self.arrivals: dict[str, list[tuple[int, float]]] = {}
        self._subscription = bus.subscribe("runs.*")
        self._thread = threading.Thread(target=self._take, name="bus-bench-notices", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        for message in self._subscription:
            run_id, seq = str(message.data.get("run_id", "")), int(message.data.get("seq") or 0)
            self.arrivals.setdefault(run_id, []).append((seq, time.time()))

    def first_covering(self, run_id: str, seq: int) -> float | None:
        """When the first notice of `run_id` announcing `seq` (its events up to at least `seq` stored) came."""
        return min((at for last, at in self.arrivals.get(run_id, ()) if last >= seq), default=None)

    def close(self) -> None:
        """Stop listening."""
        self._subscription.close()
        self._thread.join(5)


async def follow(
    store: Store, run_id: Any, notices: RunNotices | None, clock: NoticeClock | None
) -> list[Seen]:
    """Each of the run's `node.succeeded` events as the API's stream delivers it (see `Seen`)."""
    poll_s = ServeOptions().event_poll_s
    seen: list[Seen] = []
    async for event in follow_events(store, run_id, 0, poll_s=poll_s, notices=notices):
        if event.type == EventType.NODE_SUCCEEDED:
            now = time.time()
            noticed = clock.first_covering(str(run_id), event.seq) if clock is not None else None
            seen.append(
                Seen(
                    now - event.time,
                    str(event.payload.get("host") or ""),
                    noticed - event.time if noticed is not None else None,
                )
            )
    return seen


def measure(settings: Settings, store: Store, args: argparse.Namespace, bus: bool) -> list[Seen]:
    """Run `args.runs` runs, each followed from its start by a stream; every event measured."""
    executor = "ray" if settings.ray_address else "local"
    runner = DurableRunner(settings, store=store, executor=executor)
    notices = RunNotices.open(settings.event_bus) if bus else None
    clock = None
    if notices is not None:
        assert isinstance(notices.bus, NatsBus)
        if not notices.bus.wait_connected(5):
            raise SystemExit(f"NATS at {settings.event_bus} is not reachable")
        clock = NoticeClock(notices.bus)
    seen: list[Seen] = []
    try:
        doc = sleep_chain(args.steps, args.seconds, name="bus-bench")
        if executor == "ray":
            for node in doc["nodes"].values():
                node["resources"] = {"memory": TASK_MEMORY}
        runner.run(doc, {"x": 0})  # warm up: compile, connections, Ray's workers, the publisher's bus
        for i in range(args.runs):
            handle = runner.launch(doc, {"x": i + 1}).handle
            seen += asyncio.run(follow(store, handle.run_id, notices, clock))
            handle.result()
    finally:
        if clock is not None:
            clock.close()
        if notices is not None:
            notices.close()
    return seen


def summary(seen: list[Seen]) -> dict[str, Any]:
    """p50, p95 and max in milliseconds (of node end -> notice here too, over the bus), and the hosts the nodes
    ran on (with Ray)."""

    def ms(values: list[float]) -> tuple[float, float, float]:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return round(statistics.median(ordered) * 1000, 1), round(p95 * 1000, 1), round(ordered[-1] * 1000, 1)

    p50, p95, top = ms([s.latency for s in seen])
    results: dict[str, Any] = {"events": len(seen), "p50_ms": p50, "p95_ms": p95, "max_ms": top}
    noticed = [s for s in seen if s.noticed is not None]
    if noticed:
        results["notice_p50_ms"], results["notice_p95_ms"], _ = ms([s.noticed or 0.0 for s in noticed])
        after = [s.latency - (s.noticed or 0.0) for s in noticed]
        results["after_notice_p50_ms"], results["after_notice_p95_ms"], _ = ms(after)
    results["node_hosts"] = sorted({s.host for s in seen if s.host})
    return results


def placement() -> dict[str, Any]:
    """With Ray: this process's (the subscriber's) host and the hosts of the run coordinators, as the GCS says."""
    import ray

    where: dict[str, Any] = {"subscriber_host": ray.util.get_node_ip_address()}  # type: ignore[no-untyped-call]
    with contextlib.suppress(Exception):  # Ray's private GCS view: only for the report
        from ray._private import state

        where["coordinator_hosts"] = sorted(
            {
                str(actor["Address"]["IPAddress"])
                for actor in state.actors().values()
                if "Coordinator" in str(actor.get("ActorClassName", "")) and actor.get("State") == "ALIVE"
            }
        )
    return where


def create_database() -> str:
    """A new empty PostgreSQL database on this machine; its name."""
    name = f"rayweave_busbench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return name


def drop_database(name: str) -> None:
    """Drop the database `create_database` made."""
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both modes on this host (or on the Ray cluster at `args.address`); the results."""
    made = ""
    database_url = args.database_url
    if not database_url:
        made = create_database()
        database_url = f"{PG_SERVER}/{made}"
    bus_url = f"{args.nats}?prefix=rwbench_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 1)}
    try:
        with tempfile.TemporaryDirectory(prefix="rayweave-busbench-") as home:
            store = open_store(database_url)
            common: dict[str, Any] = {
                "home": Path(home),
                "database_url": database_url,
                "ray_address": args.address,
            }
            try:
                results["poll"] = summary(measure(Settings(**common, event_bus=""), store, args, bus=False))
                on_bus = Settings(**common, event_bus=bus_url)
                results["nats"] = summary(measure(on_bus, store, args, bus=True))
                if args.address:
                    results.update(placement())
            finally:
                store.close()
    finally:
        cleaner = NatsBus(bus_url)
        if cleaner.wait_connected(5):
            cleaner.delete_stream()
        cleaner.close()
        close_shared(bus_url)
        if made:
            drop_database(made)
    results["load_after"] = round(os.getloadavg()[0], 1)
    results["p95_ratio_poll_over_bus"] = round(
        results["poll"]["p95_ms"] / max(results["nats"]["p95_ms"], 0.1), 2
    )
    results["target_met"] = results["nats"]["p95_ms"] < 50
    return results


def show(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Print the results for a reader."""
    where = f" on Ray at {args.address}" if args.address else " in this process"
    print(f"node end -> subscriber, {args.runs} runs x {args.steps} nodes of {args.seconds} s{where}:")
    for mode in ("poll", "nats"):
        r = results[mode]
        print(
            f"  {mode:5} p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  ({r['events']} events)"
        )
    if "notice_p50_ms" in results["nats"]:
        r = results["nats"]
        print(
            f"  nats, node end -> its notice here: p50 {r['notice_p50_ms']:6.1f} ms  p95 {r['notice_p95_ms']:6.1f} ms;"
            f" notice -> sent: p50 {r['after_notice_p50_ms']:6.1f} ms  p95 {r['after_notice_p95_ms']:6.1f} ms"
        )
    print(
        f"  p95 poll / bus: {results['p95_ratio_poll_over_bus']}x; target p95 < 50 ms over the bus: "
        f"{'met' if results['target_met'] else 'NOT met'}"
    )
    if args.address:
        hosts = sorted({*results["poll"]["node_hosts"], *results["nats"]["node_hosts"]})
        subscriber = results.get("subscriber_host")
        print(
            f"  nodes ran on {hosts}; subscriber on {subscriber}"
            f"{' (also a node host!)' if subscriber in hosts else ''}; run coordinators on "
            f"{results.get('coordinator_hosts', 'unknown')}"
        )
    print(f"  load average (1 min) {results['load_before']} before, {results['load_after']} after")


def other_harnesses() -> list[str]:
    """The network namespaces of multi-host harnesses that another live process owns."""
    from cluster.multihost import PREFIX

    shown = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    owned = []
    for line in shown.splitlines():
        found = re.match(rf"({PREFIX}(\d+)\S*)", line)
        if found and int(found[2]) != os.getpid() and Path(f"/proc/{found[2]}").exists():
            owned.append(found[1])
    return owned


def on_harness(args: argparse.Namespace) -> None:
    """Build the multi-host harness and run this bench on its head host against it (prints its output)."""
    from cluster.multihost import MultiHostCluster, remove_stale, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"the multi-host harness cannot run here: {reason}")
    nats = urlsplit(args.nats)
    if nats.hostname not in ("127.0.0.1", "localhost") or args.database_url:
        raise SystemExit(
            "--multihost forwards this machine's NATS and PostgreSQL to the hosts: give --nats as "
            "nats://127.0.0.1:PORT and no --database-url (a new database on 127.0.0.1:5432 is made)"
        )
    remove_stale()
    deadline = time.monotonic() + args.wait_s
    while busy := other_harnesses():
        if time.monotonic() > deadline:
            raise SystemExit(f"another multi-host harness is still up after {args.wait_s:.0f} s: {busy}")
        print(f"waiting for another process's harness to end: {busy}", flush=True)
        time.sleep(15)
    nats_port = nats.port or 4222
    made = create_database()
    try:
        started = time.perf_counter()
        with MultiHostCluster(
            workers=2, worker_cpus=1, forwards=[5432, nats_port], env={"PYTHONPATH": str(REPO)}
        ) as cluster:
            if not args.json:
                print(
                    f"harness up in {time.perf_counter() - started:.0f} s: head {cluster.head.ip} (0 CPUs, the "
                    f"subscriber), workers {[h.ip for h in cluster.workers]} (1 CPU each); PostgreSQL and NATS "
                    f"through {cluster.gateway}",
                    flush=True,
                )
            argv = [sys.executable, str(Path(__file__).resolve()), "--address", cluster.address]
            argv += ["--database-url", f"postgresql+psycopg://postgres@{cluster.gateway}:5432/{made}"]
            argv += ["--nats", f"nats://{cluster.gateway}:{nats_port}"]
            argv += ["--runs", str(args.runs), "--steps", str(args.steps), "--seconds", str(args.seconds)]
            argv += ["--json"] if args.json else []
            done = cluster.run("head", argv, cwd=REPO, timeout=3600)
            print(done.stdout, end="")
            if done.returncode:
                print(done.stderr[-4000:])
                raise SystemExit(done.returncode)
    finally:
        drop_database(made)


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
    parser.add_argument("--address", default="", help="a Ray cluster to run on (default: in this process)")
    parser.add_argument("--multihost", action="store_true", help="across hosts, on the harness (root)")
    parser.add_argument(
        "--wait-s", type=float, default=1800, help="--multihost: how long to wait for another harness"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.multihost:
        on_harness(args)
        return
    results = bench(args)
    if args.json:
        print(json.dumps(results))
    else:
        show(args, results)


if __name__ == "__main__":
    main()
