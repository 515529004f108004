"""Coordinator throughput: runs/s and tasks/s with 1 and 2 run coordinators, against raw Ray in the same process.

Run: `python -m bench.coordinators_bench` (local Ray, about 3 minutes on a 2-core machine); against a running
cluster with `--address HOST:6379`; or `--multihost` (root): on the multi-host harness (`cluster/multihost.py`: a
head without CPUs and two worker hosts, each in its own network namespace, `--worker-cpus` logical CPUs each), the
bench itself then running on the head host as a driver there would.

Two workloads, each driven by `--clients` threads at once (as the request threads of an API replica would be),
sharing one `RayExecutor` per coordinator count (as a replica shares its runner's):

- small runs: `--runs` runs per round of a workflow of `--small` tiny nodes fanned into a sum (optimizer off, so
  every node is a Ray task). What a coordinator's per-run cost limits: runs/s.
- big runs: `--big-runs` runs per round of a fan-out of `--big` tiny nodes into a sum (W1 of `bench.engine_bench`,
  optimizer off). What its per-task submission and completion cost limits: tasks/s.

- durable runs (with `--database-url`, an empty PostgreSQL database the bench may fill): the small runs again, as
  durable runs (`DurableRunner`): every event and node state is written to the store from the run's
  coordinator, which is what an API run costs.

Raw Ray does the same: each client thread submits the same task graph from this driver and waits for its sum.
The three sides (raw, 1 coordinator, 2 coordinators) take turns round by round, so drift of the machine affects all
alike; in each round a side runs its workload once untimed and then once timed (`warm_then_timed`): Ray keeps a
separate pool of worker processes for the tasks of each detached actor and for the driver's (see KEEP_WORKERS), so
a side that follows another first gets its own workers back, which an installation running one number of
coordinators never pays. Medians are printed with the ratios and the load average around each round. The
coordinators' own CPU-seconds per run and per task (from /proc, when they run on this machine) give the limit one
coordinator would reach on a core of its own: the capacity model in docs/guides/capacity.md uses them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from bench.engine_bench import fan_in, raw_tasks, tiny
from engine.workflow import Workflow

LOGICAL_CPUS = 16
#: Set unless `--ray-idle-default` (for a Ray this bench starts, and on the harness's hosts): Ray kills a worker
#: idle for more than 1 s when more workers than CPUs exist. Ray (since 2.3x, PR #44214/#47212) never reuses a
#: worker between tasks rooted in different detached actors, or in a detached actor and a driver: each coordinator
#: and this driver have worker pools of their own on every node. Switching between them then starts worker
#: processes again; at load 30-45 on this machine, 24 runs of 11 tiny tasks from 8 threads took 20-36 s with two
#: coordinators right after a batch with one, against 1.7-1.9 s with idle workers kept (tasks waited about 5 s
#: for a worker to start). Raw Ray gets the same setting.
KEEP_WORKERS = ("RAY_idle_worker_killing_time_threshold_ms", "600000")


def fan_workflow(name: str, n: int) -> Workflow:
    """`n` tiny nodes fanned into one sum (n + 1 tasks with the optimizer off)."""
    wf = Workflow(name)
    wf.output("total", fan_in(wf, [wf.add(f"t{i}", tiny, i=i) for i in range(n)]))
    return wf


def cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds of process `pid` so far (0.0 when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def spread(clients: int, runs: int, one: Callable[[], Any]) -> None:
    """Call `one()` `runs` times from `clients` threads at once; re-raise the first failure."""
    with ThreadPoolExecutor(clients) as pool:
        for outcome in [pool.submit(one) for _ in range(runs)]:
            outcome.result()


def warm_then_timed(*sides: Callable[[], Any], rounds: int) -> list[list[float]]:
    """Seconds of each side's timed call per round; each round calls each side once untimed, then once timed."""
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, spent in zip(sides, times, strict=True):
            side()
            started = time.perf_counter()
            side()
            spent.append(time.perf_counter() - started)
    return times


def id_for(slot: int, count: int) -> str:
    """A fresh run id that hashes to coordinator `slot` of `count`."""
    from engine.execution.ray.coordinators import slot_of

    while True:
        run_id = f"bench-{uuid.uuid4().hex}"
        if slot_of(run_id, count) == slot:
            return run_id


class Sides:
    """The three sides of one workload: raw Ray, and rayweave with 1 and with 2 coordinators."""

    def __init__(
        self, settings: Any, executors: dict[int, Any], pids: dict[int, list[int]], clients: int
    ) -> None:
        self.settings = settings
        self.executors = executors
        self.pids = pids
        self.clients = clients
        #: Coordinator CPU-seconds of each timed call, by (count, workload).
        self.cpu: dict[tuple[int, str], list[float]] = {}
        self.loads: list[float] = [load()]

    def raw(self, n: int, expected: int, runs: int) -> Callable[[], None]:
        """`runs` raw-Ray "runs": n tiny tasks into a sum task, submitted from this driver."""
        import ray

        raw_tiny, raw_sum = raw_tasks()

        def one() -> None:
            assert ray.get(raw_sum.remote(*[raw_tiny.remote(i) for i in range(n)])) == expected

        def go() -> None:
            spread(self.clients, runs, one)
            self.loads.append(load())

        return go

    def raw_owners(self, owners: list[Any], n: int, expected: int, runs: int) -> Callable[[], None]:
        """The same raw-Ray graphs submitted by `owners` (plain detached actors, `RawOwner`), run i by owner
        i % len(owners): Ray's own cost of tasks owned by one or by two detached actors, without rayweave."""
        import itertools

        import ray

        turn = itertools.count()

        def one() -> None:
            owner = owners[next(turn) % len(owners)]
            assert ray.get(owner.graph.remote(n)) == expected

        def go() -> None:
            spread(self.clients, runs, one)
            self.loads.append(load())

        return go

    def run(self, count: int, plan: Any, expected: int, run_id: str | None = None) -> None:
        """One rayweave run of `plan` with `count` coordinators."""
        import engine

        result = engine.run(
            plan, settings=self.settings, executor=self.executors[count], cache=False, run_id=run_id
        )
        assert result.ok and result.outputs["total"] == expected, result.errors

    def ours(
        self,
        count: int,
        plan: Any,
        expected: int,
        kind: str,
        runs: int,
        runners: dict[int, Any] | None = None,
    ) -> Callable[[], None]:
        """`runs` rayweave runs of `plan` with `count` coordinators (durable ones through `runners[count]`, a
        `DurableRunner`, when given); records the coordinators' CPU."""

        def durable() -> None:
            assert runners is not None
            result = runners[count].run(plan.document, None, plan=plan.compiled, cache=False, timeout=600)
            assert result.ok and result.outputs["total"] == expected, result.errors

        def go() -> None:
            before = sum(cpu_seconds(p) for p in self.pids[count])
            one = durable if runners else lambda: self.run(count, plan, expected)
            spread(self.clients, runs, one)
            used = sum(cpu_seconds(p) for p in self.pids[count]) - before
            self.cpu.setdefault((count, kind), []).append(used)
            self.loads.append(load())

        return go


class Durable(NamedTuple):
    """A workflow document and its compiled plan, for durable runs."""

    document: dict[str, Any]
    compiled: Any


def durable_runners(settings: Any, url: str) -> dict[int, Any]:
    """A `DurableRunner` per coordinator count on the database `url` (its own result store)."""
    from engine.durable import DurableRunner

    return {
        n: DurableRunner(
            settings.model_copy(update={"coordinators": n, "database_url": url}), heartbeat_s=2.0
        )
        for n in (1, 2)
    }


class RawOwner:
    """A plain async actor that submits a raw-Ray graph (n tiny tasks into a sum) and awaits its sum: what a
    coordinator is to Ray, without rayweave."""

    def __init__(self) -> None:
        self.tiny, self.sum = raw_tasks()

    async def graph(self, n: int) -> int:
        """Submit the graph; its sum."""
        return int(await self.sum.remote(*[self.tiny.remote(i) for i in range(n)]))


def raw_owner_actors(count: int) -> list[Any]:
    """`count` detached `RawOwner` actors (no CPU, like the coordinators)."""
    import ray

    remote = ray.remote(RawOwner)
    tag = uuid.uuid4().hex[:8]
    owners = [
        remote.options(
            name=f"bench-owner-{tag}-{i}", lifetime="detached", num_cpus=0, max_concurrency=1000
        ).remote()
        for i in range(count)
    ]
    ray.get([owner.graph.remote(1) for owner in owners])
    return owners


def report(
    kind: str, n: int, runs: int, times: list[list[float]], sides: Sides, loads: tuple[float, float]
) -> None:
    """Print one workload's medians, ratios and coordinator CPU."""
    tasks = runs * (n + 1)
    medians = [statistics.median(t) for t in times]
    raw_s, owner1_s, owner2_s, one_s, two_s = medians
    print(f"\n{kind} runs ({runs} runs x {n + 1} tasks per round), load {loads[0]:.1f} -> {loads[1]:.1f}")
    for label, took in (
        ("raw Ray, driver", raw_s),
        ("raw Ray, 1 actor", owner1_s),
        ("raw Ray, 2 actors", owner2_s),
        ("1 coordinator", one_s),
        ("2 coordinators", two_s),
    ):
        print(
            f"  {label:17s} {took:7.3f} s  {runs / took:8.1f} runs/s  {tasks / took:9.0f} tasks/s"
            f"  ({took / raw_s:.2f}x raw's time)"
        )
    print(
        f"  2 coordinators against 1: {one_s / two_s:.2f}x the throughput; raw Ray, 2 owner actors against 1:"
        f" {owner1_s / owner2_s:.2f}x; 1 coordinator / 1 raw actor {one_s / owner1_s:.2f}x, 2 / 2"
        f" {two_s / owner2_s:.2f}x"
    )
    for count in (1, 2):
        cpu = statistics.median(sides.cpu[(count, kind)][1::2])  # the timed calls
        if cpu > 0:
            print(
                f"  coordinator CPU with {count}: {cpu:.2f} s per round = {1000 * cpu / runs:.2f} ms per run,"
                f" {1e6 * cpu / tasks:.0f} us per task; busy {cpu / medians[count] / count:.0%} of each one's"
                f" wall time; one on a core of its own: about {runs / cpu:.0f} runs/s, {tasks / cpu:.0f} tasks/s"
            )


def on_harness(worker_cpus: int, argv: list[str]) -> None:
    """Build the multi-host harness and run this bench on its head host against it (prints its output)."""
    from cluster.multihost import MultiHostCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"the multi-host harness cannot run here: {reason}")
    repo = Path(__file__).resolve().parent.parent
    started = time.perf_counter()
    env = {"PYTHONPATH": str(repo)}
    if KEEP_WORKERS[0] in os.environ:
        env[KEEP_WORKERS[0]] = os.environ[KEEP_WORKERS[0]]
    with MultiHostCluster(worker_cpus=worker_cpus, env=env) as cluster:
        print(
            f"harness up in {time.perf_counter() - started:.0f} s: head {cluster.head.ip} (0 CPUs), workers "
            f"{[h.ip for h in cluster.workers]} ({worker_cpus} CPUs each)",
            flush=True,
        )
        done = cluster.run(
            "head",
            [sys.executable, "-m", "bench.coordinators_bench", "--address", cluster.address, *argv],
            cwd=repo,
            timeout=3600,
        )
        print(done.stdout)
        if done.returncode:
            print(done.stderr[-4000:])
            raise SystemExit(done.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--address", default="", help="a Ray cluster to join (default: start a local Ray)")
    parser.add_argument("--clients", type=int, default=8, help="threads submitting runs at once")
    parser.add_argument("--runs", type=int, default=80, help="small runs per round and side")
    parser.add_argument("--small", type=int, default=10, help="tiny nodes per small run")
    parser.add_argument("--big-runs", type=int, default=4, help="big runs per round and side")
    parser.add_argument("--big", type=int, default=1000, help="tiny nodes per big run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each side once per round)")
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database: adds durable runs")
    parser.add_argument(
        "--ray-idle-default", action="store_true", help="Ray's default idle-worker killing (see KEEP_WORKERS)"
    )
    parser.add_argument("--multihost", action="store_true", help="run on the multi-host harness (root)")
    parser.add_argument("--worker-cpus", type=int, default=8, help="logical CPUs of each harness worker host")
    args = parser.parse_args()
    if not args.ray_idle_default:
        os.environ.setdefault(*KEEP_WORKERS)
    if args.multihost:
        on_harness(args.worker_cpus, [a for a in sys.argv[1:] if a != "--multihost"])
        return

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.compile import compile_workflow
    from engine.execution.ray.executor import RayExecutor

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="rayweave-coord-bench-")), ray_address=args.address)
    if args.address:
        ensure_ray(settings)
    else:
        ensure_ray(settings, num_cpus=LOGICAL_CPUS, include_dashboard=False)
    # One executor per coordinator count, shared by the client threads (as an API replica shares its runner's).
    executors = {n: RayExecutor(coordinators=n) for n in (1, 2)}
    pids = {
        n: [int(ray.get(h.process_info.remote())["pid"]) for h in executors[n].coordinators()] for n in (1, 2)
    }
    sides = Sides(settings, executors, pids, args.clients)
    workloads = [
        ("small", args.small, args.runs, compile_workflow(fan_workflow("small", args.small), optimize=False)),
        ("big", args.big, args.big_runs, compile_workflow(fan_workflow("big", args.big), optimize=False)),
    ]
    # Warm-up: each coordinator runs each plan once (its first run exports the node task and rebuilds the plan).
    for _, n, _, plan in workloads:
        for count in (1, 2):
            for slot in range(count):
                sides.run(count, plan, sum(range(1, n + 1)), id_for(slot, count))
    runners = durable_runners(settings, args.database_url) if args.database_url else None
    print(
        f"clients {args.clients}, rounds {args.rounds}; small: {args.runs} runs of {args.small + 1} tasks; "
        f"big: {args.big_runs} runs of {args.big + 1} tasks; coordinator pids {pids}; load {load():.1f}; idle"
        f" workers kept: {os.environ.get(KEEP_WORKERS[0], 'no (Ray default, 1 s)')}",
        flush=True,
    )
    if runners:
        durable = Durable(fan_workflow("small", args.small).to_data(), workloads[0][3])
        workloads.append(("durable", args.small, args.runs, durable))
        for count in (1, 2):
            runners[count].run(durable.document, None, plan=durable.compiled, cache=False, timeout=600)
    owners = raw_owner_actors(3)  # one alone, and two others together
    for kind, n, runs, plan in workloads:
        expected, first = sum(range(1, n + 1)), load()
        with_runners = runners if kind == "durable" else None
        times = warm_then_timed(
            sides.raw(n, expected, runs),
            sides.raw_owners(owners[:1], n, expected, runs),
            sides.raw_owners(owners[1:], n, expected, runs),
            sides.ours(1, plan, expected, kind, runs, with_runners),
            sides.ours(2, plan, expected, kind, runs, with_runners),
            rounds=args.rounds,
        )
        report(kind, n, runs, times, sides, (first, load()))
    print(f"\nload average over the run: {min(sides.loads):.1f}-{max(sides.loads):.1f}; now {load():.1f}")
    for actor in [executors[2].coordinator(1), *owners]:  # the extra coordinator and the raw owners
        ray.kill(actor)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench took {time.perf_counter() - started:.0f} s")
