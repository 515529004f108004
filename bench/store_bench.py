"""Store benchmark: record runs with all their node attempts and events, then list runs like the API does.

    .venv/bin/python bench/store_bench.py
        [--backend sqlite|postgresql|postgresql-0009|mariadb|redis|both|all|pg|every] [--runs 1000]
        [--nodes 100] [--batch 100] [--writers 1] [--pg-server postgresql://postgres@127.0.0.1:5432]
        [--mariadb-server mariadb://root@127.0.0.1:3306] [--redis-server redis://127.0.0.1:6379/0]
        [--redis-appendfsync as-is|everysec|always] [--migrate] [--json]

Per run it records what a coordinator writes: the run, its status changes, one start and one end attempt row per
node, and run.queued/run.started, node.started/node.succeeded per node, run.succeeded as events, appended in
batches of `--batch`. It reports events appended per second (time spent in `events.append` only, and end to end),
the p50/p95 of listing one page (50) of a workflow's runs filtered by status, and the p50/p95 of reading a run's
events after a sequence number (what a reconnecting subscriber asks for). As a baseline, the same event
rows are inserted with one plain SQLAlchemy Core executemany per batch (no sequence allocation).
Each backend gets a fresh database (a temporary SQLite file; a temporary PostgreSQL or MariaDB database that is
dropped). `both` is SQLite and PostgreSQL, `all` adds MariaDB. With `--migrate` the benchmarked installation is
then copied (`rayweave db migrate`: batches, ledger, verification by hashes) into a fresh database of each other
backend (Redis included), reporting rows copied per second including the verification. `postgresql-0009` is
PostgreSQL with the schema before migration 0010 (events and node runs not partitioned); `pg` is it and
`postgresql`.

`redis` is the Redis store (ADR 024) under a fresh key prefix of the `--redis-server`, its keys deleted
afterwards; `every` is `all` and `redis`. With `--redis-appendfsync everysec` or `always` the bench turns the
server's append-only file on with that fsync policy for its run (`CONFIG SET`, waiting for the file's first
rewrite to end) and puts both settings back afterwards; `as-is` (the default) measures the server as configured,
accepting it even when it would lose writes (`?durability=relaxed`). The result names the AOF settings measured.
Its baseline is the same events written with plain pipelined `XADD`s (no sequence allocation, no indexes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from engine.store import NewEvent, SqlStore, Store, open_store
from engine.store.columns import utcnow
from engine.store.migrate import upgrade_database
from engine.store.models import Event
from engine.store.open import open_sql_store
from nodes.ids import NodeId, WorkflowId

WORKFLOWS = 10
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")


@contextmanager
def database(
    backend: str, pg_server: str, mariadb_server: str = "", redis_server: str = "redis://127.0.0.1:6379/0"
) -> Iterator[str]:
    """A fresh, empty database URL for `backend`, removed afterwards."""
    if backend == "redis":
        with redis_prefix(redis_server) as url:
            yield url
        return
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"rayweave_bench_{uuid.uuid4().hex[:8]}"
    if backend == "mariadb":  # postgresql-0009 is PostgreSQL
        server = mariadb_server.replace("mariadb://", "mariadb+pymysql://")
        maria = sa.create_engine(server)
        with maria.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
        try:
            yield f"{mariadb_server}/{name}"
        finally:
            with maria.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            maria.dispose()
        return
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


@contextmanager
def redis_prefix(server: str) -> Iterator[str]:
    """A store URL under a fresh key prefix of the Redis `server` (durability as the server has it), every key
    under the prefix deleted afterwards."""
    import redis

    prefix = f"rwbench-{uuid.uuid4().hex[:8]}"
    try:
        yield f"{server}?prefix={prefix}&durability=relaxed"
    finally:
        client = redis.Redis.from_url(server, decode_responses=True)
        batch: list[str] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        client.close()


@contextmanager
def redis_aof(server: str, appendfsync: str) -> Iterator[dict[str, str]]:
    """The Redis `server` with its append-only file on and `appendfsync` (unless `as-is`) for the block, both
    settings put back afterwards; yields the settings measured."""
    import redis

    client: Any = redis.Redis.from_url(server, decode_responses=True)
    before = {name: client.config_get(name)[name] for name in ("appendonly", "appendfsync")}
    try:
        if appendfsync != "as-is":
            client.config_set("appendfsync", appendfsync)
            client.config_set("appendonly", "yes")
            _aof_rewritten(client)
        yield {name: client.config_get(name)[name] for name in ("appendonly", "appendfsync")}
    finally:
        _aof_rewritten(client)
        for name in ("appendonly", "appendfsync"):
            client.config_set(name, before[name])
        client.close()


def _aof_rewritten(client: Any, timeout_s: float = 600) -> None:
    """Wait for an append-only file rewrite the server is doing (or has scheduled) to end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.1)


def record_run(store: Store, workflow_id: str, index: int, nodes: int, batch: int) -> tuple[int, float]:
    """Write one complete run like a coordinator would; returns (events, seconds spent appending events)."""
    run = store.runs.create(
        workflow_id=WorkflowId(workflow_id), inputs={"i": index}, idempotency_key=f"bench-{index}"
    ).run
    final = STATUSES[index % len(STATUSES)]
    events = [NewEvent("run.queued"), NewEvent("run.started")]
    attempts = []
    start = utcnow()
    for n in range(nodes):
        node = NodeId(f"n{n:03d}")
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
    """Events/s of plain Core executemany inserts of the same shape (the floor the repository adds to); on
    Redis, of plain pipelined `XADD`s."""
    run_ids = [r.id for r in store.runs.list(limit=runs).items]
    if not isinstance(store, SqlStore):
        return _baseline_redis(store, run_ids, nodes, batch)
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
    rate = total / (time.perf_counter() - t0)
    # Out of the installation again: they bypass the runs' last_seq, which `--migrate`'s copies would not match.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(Event).where(sa.column("seq") >= 100_000))
    return rate


def _baseline_redis(store: Any, run_ids: Sequence[str], nodes: int, batch: int) -> float:
    """Events/s of plain `XADD`s of the same shape, one pipeline per batch, into scratch streams under the
    store's prefix (deleted with it)."""
    client = store.client
    total, t0 = 0, time.perf_counter()
    for run_id in run_ids:
        key = f"{store.prefix}:bench-baseline:{run_id}"
        count = 2 * nodes + 3
        for i in range(0, count, batch):
            pipe = client.pipeline(transaction=False)
            for s in range(i, min(i + batch, count)):
                pipe.xadd(key, {"type": "node.log", "payload": "{}", "at": "0"}, id=f"{100_000 + s}-0")
            pipe.execute()
        total += count
    return total / (time.perf_counter() - t0)


def stored_events(store: Store) -> int:
    """How many events the store holds (a count of the table; on Redis, the lengths of every run's Stream)."""
    if isinstance(store, SqlStore):
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(Event)).scalar_one())
    redis_store: Any = store  # engine.store.redis.RedisStore
    client, prefix = redis_store.client, redis_store.prefix
    run_ids = client.zrange(f"{prefix}:runs:ids", 0, -1)
    pipe = client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.xlen(f"{prefix}:run:{run_id}:events")
    return sum(pipe.execute())


def migrate(
    url: str, backend: str, targets: list[str], pg_server: str, mariadb_server: str, redis_server: str
) -> dict[str, Any]:
    """Copy the installation at `url` into a fresh database of each backend of `targets` (but its own): rows
    per second of the copy including its verification."""
    from engine.store.transfer import copy_installation

    figures: dict[str, Any] = {}
    source = open_store(url)
    for target_backend in targets:
        if target_backend == backend:
            continue
        with database(target_backend, pg_server, mariadb_server, redis_server) as target_url:
            target = open_store(target_url)
            t0 = time.perf_counter()
            report = copy_installation(source, target)
            seconds = time.perf_counter() - t0
            target.close()
        rows = sum(t["copied"] for t in report.tables.values())
        figures[f"to_{target_backend}"] = {
            "rows": rows,
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds),
        }
    source.close()
    return figures


def bench(backend: str, url: str, runs: int, nodes: int, batch: int, writers: int) -> dict[str, Any]:
    """Run the whole benchmark on one database."""
    store: Store
    if backend == "postgresql-0009":  # the schema before partitioning (ADR 023)
        sql = open_sql_store(url, upgrade=False)
        upgrade_database(sql.engine, "0009")
        store = sql
    else:
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
    # Reading a run's events after a sequence number, as a subscriber reconnecting with Last-Event-ID does.
    run_ids = [r.id for r in store.runs.list(limit=min(runs, 500)).items]
    reads = []
    for i in range(300):
        q0 = time.perf_counter()
        store.events.read(run_ids[(i * 7919) % len(run_ids)], after=nodes)
        reads.append((time.perf_counter() - q0) * 1000)
    reads.sort()
    stored = stored_events(store)
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
        "events_after_ms_p50": round(statistics.median(reads), 2),
        "events_after_ms_p95": round(reads[int(len(reads) * 0.95) - 1], 2),
    }


def main() -> None:
    """Parse the command line, run the benchmark on each backend, print the numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "postgresql-0009", "mariadb", "redis", "both", "all", "pg", "every"],
        default="both",
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--mariadb-server", default="mariadb://root@127.0.0.1:3306")
    parser.add_argument("--redis-server", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--redis-appendfsync",
        choices=["as-is", "everysec", "always"],
        default="as-is",
        help="run Redis with its append-only file on and this fsync policy (put back afterwards)",
    )
    parser.add_argument("--migrate", action="store_true", help="also time copies into the other backends")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    groups = {
        "both": ["sqlite", "postgresql"],
        "all": ["sqlite", "postgresql", "mariadb"],
        "pg": ["postgresql-0009", "postgresql"],
        "every": ["sqlite", "postgresql", "mariadb", "redis"],
    }
    backends = groups.get(args.backend, [args.backend])
    results = []
    for backend in backends:
        with database(backend, args.pg_server, args.mariadb_server, args.redis_server) as url:
            if backend == "redis":
                with redis_aof(args.redis_server, args.redis_appendfsync) as aof:
                    results.append(bench(backend, url, args.runs, args.nodes, args.batch, args.writers))
                results[-1]["redis_aof"] = aof
            else:
                results.append(bench(backend, url, args.runs, args.nodes, args.batch, args.writers))
            if args.migrate:
                results[-1]["migrate"] = migrate(
                    url, backend, groups["every"], args.pg_server, args.mariadb_server, args.redis_server
                )
        if not args.json:
            print(json.dumps(results[-1], indent=2), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
