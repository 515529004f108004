"""PostgreSQL before and after partitioning (ADR 023): the hot reads on equal data, queried in turn.

    .venv/bin/python bench/partition_bench.py [--runs 2000] [--events 200] [--nodes 100] [--rounds 3]
        [--queries 400]

Two fresh databases on the PostgreSQL server of the tests (127.0.0.1:5432, dropped afterwards): one at revision
0009 (events and node runs not partitioned), one at the newest (partitioned by hash of the run id). Both are
filled alike with SQL (`tests/engine/store/pg_plans.fill`: `--runs` runs of one workflow, each with `--events`
events and `--nodes` attempts, then ANALYZE). Each round times, on one schema then the other, `--queries`
reads of a run's events after a sequence number, of a run's attempts, and of one page of the workflow's running
runs, and prints p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from functools import partial

from engine.store import Store, open_store
from engine.store.migrate import upgrade_database
from nodes.ids import RunId, WorkflowId
from tests.engine.store import pg_plans, sql_support


def _figures(times: list[float]) -> str:
    ordered = sorted(times)
    return f"p50 {statistics.median(ordered):.2f} p95 {ordered[int(len(ordered) * 0.95)]:.2f}"


def _timed(query: Callable[[], object]) -> float:
    start = time.perf_counter()
    query()
    return (time.perf_counter() - start) * 1000


def _round(
    store: Store, wf: str, runs: int, after: int, queries: int
) -> tuple[list[float], list[float], list[float]]:
    events, attempts, pages = [], [], []
    for i in range(queries):
        run = RunId(f"run-{(i * 7919) % runs + 1:07d}")
        events.append(_timed(partial(store.events.read, run, after=after)))
        attempts.append(_timed(partial(store.node_runs.list, run)))
        pages.append(_timed(partial(store.runs.list, workflow_id=WorkflowId(wf), status="running", limit=50)))
    return events, attempts, pages


def main() -> None:
    """Parse the command line, fill both databases, print each round's figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args()
    stores: dict[str, tuple[Store, str]] = {}
    with contextlib.ExitStack() as stack:
        for revision in ("0009", "head"):
            url = stack.enter_context(sql_support.postgres_database("rayweave_bench"))
            store = open_store(url, upgrade=False)
            stack.callback(store.close)
            upgrade_database(store.engine, revision)
            wf = store.workflows.create({"name": "busy", "nodes": {}}).workflow_id
            pg_plans.fill(store, wf, runs=args.runs, events=args.events, nodes=args.nodes, active_every=50)
            stores["partitioned" if revision == "head" else "not partitioned (0009)"] = (store, wf)
        for round_ in range(args.rounds):
            for name, (filled, workflow) in stores.items():
                events, attempts, pages = _round(filled, workflow, args.runs, args.events // 2, args.queries)
                print(
                    f"round {round_ + 1} {name}: events after {_figures(events)} | attempts {_figures(attempts)}"
                    f" | run list {_figures(pages)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
