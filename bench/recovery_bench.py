"""Benchmark of crash recovery: 100 durable runs interrupted mid-run, on SQLite, and the time until all resumed.

Each run is a chain `a -> b -> c` on a local Ray (4 logical CPUs). The 100 runs are executed, then each is put
back into the exact state a coordinator crash during `b` leaves in the store and the result store (b's attempt
`running`, no result for b and c, events after b's start gone, heartbeat stale) — a real kill of the coordinator
is what `tests/engine/durable/test_crash_*.py` do; here the crash state is made directly so that 100 runs can be
interrupted at the same point on a 2-core machine. Then recovery sweeps claim and resume them. Reported: the time
the sweeps took to resume every run (claim, rebuild the plan, seed it from the result store, restart it on the
coordinator), the time until every resumed run finished, and for comparison, in the same process, the time raw
Ray tasks take to run the same 100 chains from scratch. Checked: every run succeeded and no `a` ran twice.

    .venv/bin/python bench/recovery_bench.py [--runs 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes import context, node


@node(plugin="bench", cache=False)
def step(x: int, *, log: str) -> int:
    """Counts its execution in `log/<run>.<node>`, returns x + 1."""
    ctx = context.current()
    with (Path(log) / f"{ctx.run_id}.{ctx.node_id}").open("a") as f:
        f.write("1\n")
    return x + 1


def chain(log: Path) -> Any:
    """a -> b -> c."""
    from engine.workflow import Workflow

    wf = Workflow("recovery-bench")
    x = wf.input("x", "Int")
    a = wf.add("a", step, x=x, params={"log": str(log)})
    b = wf.add("b", step, x=a, params={"log": str(log)})
    wf.output("out", wf.add("c", step, x=b, params={"log": str(log)}))
    return wf


def raw_ray(runs: int) -> float:
    """Seconds for raw Ray tasks to run `runs` chains of three tiny tasks from scratch."""
    import ray

    @ray.remote
    def inc(x: int) -> int:
        return x + 1

    started = time.perf_counter()
    ray.get([inc.remote(inc.remote(inc.remote(i))) for i in range(runs)])
    return time.perf_counter() - started


def wait(predicate: Any, timeout: float, what: str) -> None:
    """Poll until `predicate()`; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def interrupt(store: Any, results: Any, run_ids: list[str]) -> None:
    """Put finished runs into the state a coordinator crash while `b` ran leaves behind (see the docstring)."""
    from datetime import timedelta

    import sqlalchemy as sa

    from engine.store.columns import utcnow
    from engine.store.models import Event, NodeRun, Run, table_of

    runs, node_runs, events = table_of(Run), table_of(NodeRun), table_of(Event)
    stale = utcnow() - timedelta(minutes=1)
    with store.engine.begin() as conn:
        for run_id in run_ids:
            started = conn.execute(
                sa.select(events.c.seq).where(
                    events.c.run_id == run_id, events.c.type == "node.started", events.c.node_id == "b"
                )
            ).scalar_one()
            conn.execute(sa.delete(events).where(events.c.run_id == run_id, events.c.seq > started))
            conn.execute(sa.delete(node_runs).where(node_runs.c.run_id == run_id, node_runs.c.node_id == "c"))
            conn.execute(
                sa.update(node_runs)
                .where(node_runs.c.run_id == run_id, node_runs.c.node_id == "b")
                .values(status="running", finished_at=None, result_location=None)
            )
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status="running", finished_at=None, last_seq=started, heartbeat_at=stale, updated_at=stale
                )
            )
    for run_id in run_ids:
        for node_id in ("b", "c"):
            Path(results.location(run_id, node_id), "meta.json").unlink()


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.durable import DurableRunner, recover

    tmp = Path(tempfile.mkdtemp(prefix="rw-recovery-bench-"))
    log = tmp / "log"
    log.mkdir()
    settings = Settings(home=tmp / "home")
    ensure_ray(settings, num_cpus=4, include_dashboard=False)
    try:
        runner = DurableRunner(settings, heartbeat_s=2.0)
        store = runner.store
        workflow = chain(log)
        started = time.perf_counter()
        handles = [runner.submit(workflow, {"x": i}) for i in range(args.runs)]
        ids = [h.run_id for h in handles]
        for handle in handles:
            handle.result(timeout=300)
        first_s = time.perf_counter() - started
        interrupt(store, runner.results, ids)

        resumed_handles: dict[str, Any] = {}
        sweep_started = time.perf_counter()
        resumed: list[str] = []
        while len(resumed) < args.runs:
            resumed += recover(runner=runner, stale_after_s=10.0, handles=resumed_handles, limit=1000)
            if time.perf_counter() - sweep_started > 300:
                raise SystemExit(f"only {len(resumed)} of {args.runs} runs were resumed")
        resume_s = time.perf_counter() - sweep_started
        for run_id in ids:
            resumed_handles[run_id].result(timeout=300)
        finished_s = time.perf_counter() - sweep_started
        statuses = {store.runs.get(run_id).status for run_id in ids}
        reruns_of_a = sum(len(p.read_text().split()) - 1 for p in log.glob("*.a"))
        raw_s = raw_ray(args.runs)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    numbers = {
        "runs": args.runs,
        "backend": "sqlite",
        "first_execution_s": round(first_s, 3),
        "resume_all_s": round(resume_s, 3),
        "resume_per_run_ms": round(1000 * resume_s / args.runs, 2),
        "all_finished_after_resume_s": round(finished_s, 3),
        "raw_ray_chains_from_scratch_s": round(raw_s, 3),
        "statuses": sorted(statuses),
        "reruns_of_finished_nodes": reruns_of_a,
    }
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        for key, value in numbers.items():
            print(f"{key:>32}: {value}")
    if statuses != {"succeeded"} or reruns_of_a:
        raise SystemExit("recovery was not clean")


if __name__ == "__main__":
    main()
