"""Store benchmark: record runs with all their node attempts and events, then list runs like the API does.

    .venv/bin/python bench/store_bench.py [--backend sqlite|postgresql|both] [--runs 1000] [--nodes 100]
        [--batch 100] [--writers 1] [--pg-server postgresql://postgres@127.0.0.1:5432] [--json]

Per run it records what a coordinator writes: the run, its status changes, one start and one end attempt row per
node, and run.queued/run.started, node.started/node.succeeded per node, run.succeeded as events, appended in
batches of `--batch`. It reports events appended per second (time spent in `events.append` only, and end to end),
and the p50/p95 of listing one page (50) of a workflow's runs filtered by status. As a baseline, the same event
rows are inserted with one plain SQLAlchemy Core executemany per batch (no sequence allocation).
Each backend gets a fresh database (a temporary SQLite file; a temporary PostgreSQL database that is dropped).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from engine.store import NewEvent, Store, open_store
from engine.store.columns import utcnow
from engine.store.models import Event

WORKFLOWS = 10
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")


@contextmanager
def database(backend: str, pg_server: str) -> Iterator[str]:
    """A fresh, empty database URL for `backend`, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"rayweave_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{pg_server.replace('postgresql://', 'postgresql+psycopg://')}/postgres")
    admin = admin.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def record_run(store: Store, workflow_id: str, index: int, nodes: int, batch: int) -> tuple[int, float]:
    """Write one complete run like a coordinator would; returns (events, seconds spent appending events)."""
    run = store.runs.create(
        workflow_id=workflow_id, inputs={"i": index}, idempotency_key=f"bench-{index}"
    ).run
    final = STATUSES[index % len(STATUSES)]
    events = [NewEvent("run.queued"), NewEvent("run.started")]
    attempts = []
    start = utcnow()
    for n in range(nodes):
        node = f"n{n:03d}"
        events.append(NewEvent("node.started", node, {"attempt": 1}))
        events.append(NewEvent("node.succeeded", node, {"attempt": 1, "duration_s": 0.01}))
        attempts.append(
            {
                "run_id": run.id,
                "node_id": node,
                "attempt": 1,
                "node_type": f"bench/type{n % 7}@1",
                "status": "succeeded",
                "started_at": start,
                "finished_at": start + timedelta(milliseconds=10),
                "result_location": f"file:///results/{run.id}/{node}",
            }
        )
    events.append(NewEvent(f"run.{final}"))
    store.runs.update_status(run.id, "running")
    spent = 0.0
    for i in range(0, len(events), batch):
        t0 = time.perf_counter()
        store.events.append(run.id, events[i : i + batch])
        spent += time.perf_counter() - t0
    store.node_runs.record_many(attempts)
    store.runs.update_status(run.id, final)
    return len(events), spent


def baseline_events(store: Store, runs: int, nodes: int, batch: int) -> float:
    """Events/s of plain Core executemany inserts of the same shape (the floor the repository adds to)."""
    run_ids = [r.id for r in store.runs.list(limit=runs).items]
    now = utcnow()
    total, t0 = 0, time.perf_counter()
    for run_id in run_ids:
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "seq": 100_000 + s,
                "type": "node.log",
                "node_id": None,
                "payload": {},
                "created_at": now,
            }
            for s in range(2 * nodes + 3)
        ]
        for i in range(0, len(rows), batch):
            with store.engine.begin() as conn:
                conn.execute(sa.insert(Event), rows[i : i + batch])
        total += len(rows)
    return total / (time.perf_counter() - t0)


def bench(backend: str, url: str, runs: int, nodes: int, batch: int, writers: int) -> dict[str, Any]:
    """Run the whole benchmark on one database."""
    store = open_store(url)
    wfs = [
        store.workflows.create({"format": "rayweave.workflow/1", "name": f"wf{i}", "nodes": {}}).workflow_id
        for i in range(WORKFLOWS)
    ]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(
            pool.map(lambda i: record_run(store, wfs[i % WORKFLOWS], i, nodes, batch), range(runs))
        )
    wall = time.perf_counter() - t0
    events = sum(r[0] for r in results)
    append_s = sum(r[1] for r in results)
    # Listing: one page of a workflow's runs filtered by status, as GET /v1/runs?workflow=..&status=.. does.
    timings = []
    for i in range(300):
        q0 = time.perf_counter()
        page = store.runs.list(workflow_id=wfs[i % WORKFLOWS], status=STATUSES[i % 3 + 2], limit=50)
        if i % 2 and page.next_cursor:
            store.runs.list(
                workflow_id=wfs[i % WORKFLOWS], status="succeeded", limit=50, cursor=page.next_cursor
            )
        timings.append((time.perf_counter() - q0) * 1000)
    timings.sort()
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Event)).scalar_one()
    baseline = baseline_events(store, min(runs, 200), nodes, batch)
    store.close()
    return {
        "backend": backend,
        "runs": runs,
        "nodes_per_run": nodes,
        "events": events,
        "events_stored": stored,
        "node_attempts": runs * nodes,
        "batch": batch,
        "writers": writers,
        "record_wall_s": round(wall, 2),
        "events_per_s_append": round(events / append_s) if writers == 1 else None,
        "events_per_s_end_to_end": round(events / wall),
        "baseline_core_insert_events_per_s": round(baseline),
        "list_page_ms_p50": round(statistics.median(timings), 2),
        "list_page_ms_p95": round(timings[int(len(timings) * 0.95) - 1], 2),
    }


def main() -> None:
    """Parse the command line, run the benchmark on each backend, print the numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        with database(backend, args.pg_server) as url:
            results.append(bench(backend, url, args.runs, args.nodes, args.batch, args.writers))
        if not args.json:
            print(json.dumps(results[-1], indent=2), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
