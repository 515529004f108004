"""Analytics over 100,000 runs: how long the first (cold) export and query take, and the incremental ones after.

    .venv/bin/python bench/analytics_bench.py [--runs 100000] [--new 1000] [--nodes 4]

Builds a SQLite store with `--runs` finished runs of a few workflows (each with `--nodes` node attempts, some
retried, failed or cached) quickly: one run and one attempt are recorded through the store, then cloned in bulk
with `executemany` (the store's own columns, whatever its schema version). Then measures:

- cold export: `sync_export` into an empty directory (reads every finished run from the database);
- cold query: a fresh `RunAnalytics` answering the questions `rayweave stats` and the report ask (breakdowns by
  workflow and version, by node type, by owner, run durations, the workflow report's data);
- warm export: `--new` more runs finish, `sync_export` again (only they are read);
- warm query: the same questions, fresh connection, over all the files.

The target: a report over 100,000 runs answers in under a second (warm export + warm query).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.analytics import RunAnalytics, breakdown, sync_export
from engine.analytics.workflow_report import workflow_report
from engine.store import Store, open_store

NODES = ["load", "clean", "train", "score", "plot", "save"]
OWNERS = ["ada", "bob", "eve"]


def _fmt(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def build(
    store: Store, db: Path, runs: int, nodes: int, start: datetime, end: datetime, seed: int
) -> list[str]:
    """Record `runs` finished runs created between `start` and `end`, cloned from one real run; returns the
    workflow ids."""
    rng = random.Random(seed)
    doc = {
        "format": "rayweave.workflow/1",
        "name": "bench",
        "nodes": {n: {"type": f"bench/{n}@1"} for n in NODES[:nodes]},
    }
    ids = [store.workflows.create({**doc, "name": f"bench-{i}"}).workflow_id for i in range(3)]
    workflows = [str(w) for w in ids]
    template = store.runs.create(workflow_id=ids[0], at=start).run
    store.node_runs.record_many(
        [
            {
                "run_id": template.id,
                "node_id": "load",
                "node_type": "bench/load@1",
                "attempt": 1,
                "status": "succeeded",
            }
        ]
    )
    store.runs.update_status(template.id, "succeeded", at=start + timedelta(seconds=1))
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    run_row = dict(con.execute("SELECT * FROM runs WHERE id = ?", (template.id,)).fetchone())
    node_row = dict(con.execute("SELECT * FROM node_runs WHERE run_id = ?", (template.id,)).fetchone())
    run_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    event_rows: list[tuple[Any, ...]] = []
    step = (end - start) / max(runs, 1)
    for i in range(runs):
        run_id = uuid.uuid4().hex
        wf = workflows[i % len(workflows)]
        created = start + step * i
        begun = created + timedelta(seconds=rng.uniform(0.01, 2.0))
        clock = begun
        status = "succeeded"
        for n in NODES[:nodes]:
            hit = rng.random() < 0.2
            attempts = 1 if hit else (2 if rng.random() < 0.1 else 1)
            for attempt in range(1, attempts + 1):
                seconds = 0.0 if hit else rng.lognormvariate(0, 0.5) * (1 + NODES.index(n))
                failed = not hit and (attempt < attempts or rng.random() < 0.02)
                node_rows.append(
                    {
                        **node_row,
                        "run_id": run_id,
                        "node_id": n,
                        "node_type": f"bench/{n}@1",
                        "attempt": attempt,
                        "status": "cached" if hit else ("failed" if failed else "succeeded"),
                        "cache_hit": hit,
                        "started_at": _fmt(clock),
                        "finished_at": _fmt(clock + timedelta(seconds=seconds)),
                    }
                )
                clock += timedelta(seconds=seconds)
                seq = len(event_rows) + 1  # unique within the run (numbers need not start at 1 here)
                if hit:
                    event_rows.append((run_id, seq, "node.cached", n, '{"level": "disk"}', _fmt(clock)))
                else:
                    # The attempt's final (or retrying) event with its measured figures, as the engine writes.
                    kind, key = (
                        ("node.retrying", "failed_attempt")
                        if attempt < attempts
                        else (
                            ("node.failed" if failed else "node.succeeded"),
                            "attempt",
                        )
                    )
                    usage = (
                        f'{{"{key}": {attempt}, "cpu_s": {seconds * 0.8:.6f}, '
                        f'"memory_bytes": {rng.randrange(0, 2**28)}, "output_bytes": 4096}}'
                    )
                    event_rows.append((run_id, seq, kind, n, usage, _fmt(clock)))
                if failed and attempt == attempts:
                    status = "failed"
            if status == "failed":
                break
        run_rows.append(
            {
                **run_row,
                "id": run_id,
                "workflow_id": wf,
                "owner": OWNERS[i % len(OWNERS)],
                "status": status,
                "idempotency_key": None,
                "created_at": _fmt(created),
                "updated_at": _fmt(clock),
                "started_at": _fmt(begun),
                "finished_at": _fmt(clock),
            }
        )
    _insert(con, "runs", run_rows)
    _insert(con, "node_runs", node_rows)
    con.executemany(
        "INSERT INTO events (run_id, seq, type, node_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        event_rows,
    )
    con.commit()
    con.close()
    return workflows


def _insert(con: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    con.executemany(sql, [tuple(r[c] for c in columns) for r in rows])


def questions(directory: Path, workflow: str, *, median: bool = False) -> dict[str, float]:
    """Answer what `rayweave stats` and `rayweave report` ask, on a fresh connection; seconds per step (and the
    process's CPU seconds over all of them, DuckDB's threads included, under "cpu"). `median`: ask for the
    memory medians too, as the JSON answers do."""
    taken: dict[str, float] = {}
    cpu = time.process_time()
    began = time.perf_counter()
    with RunAnalytics(directory) as analytics:
        taken["open (read the Parquet files)"] = time.perf_counter() - began
        # As `rayweave stats` (its tables) and `rayweave report` ask them: no memory median, which they do not
        # show (`--json` and the API's JSON routes ask for it; `--median` here does too).
        steps: dict[str, Callable[[], object]] = {
            "by workflow, version": lambda: breakdown(
                analytics, ["workflow", "version"], memory_median=median
            ),
            "by node type": lambda: breakdown(analytics, ["node_type"], memory_median=median),
            "by owner": lambda: breakdown(analytics, ["owner"], memory_median=median),
            "run durations per day": analytics.run_durations,
            "workflow report data": lambda: workflow_report(analytics, workflow, memory_median=median),
        }
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            taken[name] = time.perf_counter() - began
    taken["cpu"] = time.process_time() - cpu
    return taken


def _show(label: str, taken: dict[str, float]) -> float:
    cpu = taken.pop("cpu")
    total = sum(taken.values())
    steps = ", ".join(f"{k} {v:.3f}" for k, v in taken.items())
    print(f"{label}: {total:.3f} s wall, {cpu:.3f} s CPU ({steps})", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--nodes", type=int, default=4, choices=range(1, len(NODES) + 1))
    parser.add_argument(
        "--keep", type=Path, help="Build in this directory and keep it (default: a temporary one)."
    )
    parser.add_argument(
        "--median", action="store_true", help="Ask for the memory medians too (as the JSON answers do)."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        db = root / "rayweave.db"
        store = open_store(f"sqlite:///{db}")
        began = time.perf_counter()
        now = datetime.now(UTC)
        workflows = build(
            store, db, args.runs, args.nodes, now - timedelta(days=30), now - timedelta(hours=1), 1
        )
        print(
            f"built {args.runs} runs ({args.nodes} nodes each) in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        out = root / "analytics"
        began, cpu = time.perf_counter(), time.process_time()
        cold = sync_export(store, out, output_sizes=False)
        cold_export = time.perf_counter() - began
        print(
            f"cold export: {cold.runs} runs, {cold.node_runs} attempts in {cold_export:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU",
            flush=True,
        )
        _show("cold query (fresh connection)", questions(out, workflows[0], median=args.median))
        build(store, db, args.new, args.nodes, now - timedelta(minutes=50), now - timedelta(minutes=1), 2)
        began, cpu = time.perf_counter(), time.process_time()
        warm = sync_export(store, out, output_sizes=False)
        warm_export = time.perf_counter() - began
        print(
            f"warm export: {warm.runs} new runs, {warm.node_runs} attempts in {warm_export:.3f} s wall, "
            f"{time.process_time() - cpu:.3f} s CPU",
            flush=True,
        )
        warm_query = _show("warm query (fresh connection)", questions(out, workflows[0], median=args.median))
        print(f"report over {args.runs + args.new} runs: {warm_export + warm_query:.3f} s (target < 1 s)")
        store.close()


if __name__ == "__main__":
    main()
