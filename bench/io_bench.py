"""I/O-bound fan-out benchmark: rayweave's warm pool against raw Ray and a thread pool, with Ray at 2 CPUs.

Run: `python -m bench.io_bench` (about two minutes). One process starts a loopback Ray with `num_cpus=2`, as on a
user's laptop or a small VM, and measures side by side (issue 17):

IO   16 independent nodes that each wait 0.5 s (`time.sleep` in a node declared `io_bound=True`)
     target: rayweave < 0.65 s
     - rayweave: the nodes run on the coordinator's warm pool of actors (`engine.execution.ray.iopool`);
     - rayweave with the same node not declared I/O-bound (`num_cpus=0.125`: the task path, as before);
     - raw Ray tasks as a user writes them: `@ray.remote` (1 CPU each) and `@ray.remote(num_cpus=0.125)`;
     - raw Ray with a threaded actor (`max_concurrency=16`, `num_cpus=0`), created once;
     - a `concurrent.futures.ThreadPoolExecutor` of 16 threads in this process (the floor).
CPU  4 independent nodes that each burn 0.3 s of CPU (the task path): rayweave against raw Ray tasks
     target: not slower than raw Ray (<= 1.1x); the pool must not take CPU from these
MIX  both at once in one workflow (4 CPU nodes and 16 waits): rayweave only; the ideal is the longer of the
     two alone (about 0.6 s)

Every figure is the median of `REPEATS` timed runs (`CPU_REPEATS` for CPU and MIX) after one untimed warm-up
run of each side (which starts the workers, the coordinator and the pool actor); sides take turns run by run,
so a machine that slows down meanwhile affects all alike. Workflows are compiled once before the timed runs.
The load average is printed with the table: the task-path figures depend on it (Ray starts a worker process
per concurrent task, and reaps the extras between runs), the pool's and the thread pool's do not.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.engine_bench import burn, calibrate_burn
from engine.workflow import Workflow
from nodes import node

REPEATS = 3
#: Rounds of the CPU comparison: a ratio of two sub-second times on a 2-core machine shared with other work
#: moves by 20% from one round to the next, so it takes more rounds than the waits (which do not move).
CPU_REPEATS = 7
NODES = 16
WAIT_S = 0.5
CPU_NODES = 4
CPU_S = 0.3
NUM_CPUS = 2
#: The CPU share of the fractional-CPU task variants: all 16 fit in Ray's 2 CPUs at once.
FRACTION = NUM_CPUS / NODES
TARGET_S = 0.65


@node(plugin="bench", cache=False, io_bound=True)
def io_wait(i: int, *, seconds: float) -> int:
    """Wait `seconds` (a stand-in for an HTTP call), return i."""
    time.sleep(seconds)
    return i


@node(plugin="bench", cache=False)
def task_wait(i: int, *, seconds: float) -> int:
    """`io_wait` not declared I/O-bound: runs as a Ray task (the path every node took before the pool)."""
    time.sleep(seconds)
    return i


def fan_out(name: str, parts: list[tuple[str, Any, int, dict[str, Any], dict[str, Any] | None]]) -> Workflow:
    """A workflow of independent nodes, each an output: `parts` = (prefix, node, count, params, resources)."""
    wf = Workflow(name)
    for prefix, definition, count, params, resources in parts:
        for i in range(count):
            handle = wf.add(f"{prefix}{i}", definition, i=i, params=params, resources=resources)
            wf.output(f"{prefix}{i}", handle)
    return wf


def paired_medians(fns: list[Callable[[], Any]], rounds: int = REPEATS) -> list[float]:
    """The median time of each of `fns` over `rounds` rounds, after one untimed warm-up run of each; the
    functions take turns within every round."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for index, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            times[index].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def main() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    import engine
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.compile import compile_workflow
    from engine.execution.ray.executor import RayExecutor

    home = Path(tempfile.mkdtemp(prefix="rayweave-io-bench-"))
    settings = Settings(home=home)
    ensure_ray(settings, num_cpus=NUM_CPUS, include_dashboard=False)
    executor = RayExecutor()

    def sleep_task(i: int, seconds: float) -> int:
        time.sleep(seconds)
        return i

    raw_task = ray.remote(sleep_task)
    raw_fraction = ray.remote(num_cpus=FRACTION)(sleep_task)

    @ray.remote(num_cpus=0, max_concurrency=NODES)
    class Waiter:
        def wait(self, i: int, seconds: float) -> int:
            time.sleep(seconds)
            return i

    waiter = Waiter.remote()  # type: ignore[attr-defined]
    threads = ThreadPoolExecutor(max_workers=NODES)

    @ray.remote
    def raw_burn(i: int, iterations: int) -> int:
        return int(burn.target(i, iterations=iterations))

    calibrate = ray.remote(calibrate_burn)
    iterations = int(statistics.median(ray.get(calibrate.remote(CPU_S)) for _ in range(3)))

    waits = {"seconds": WAIT_S}
    plans = {
        "io": compile_workflow(fan_out("io", [("w", io_wait, NODES, waits, None)])),
        "io_task": compile_workflow(
            fan_out("io_task", [("w", task_wait, NODES, waits, {"num_cpus": FRACTION})])
        ),
        "cpu": compile_workflow(fan_out("cpu", [("b", burn, CPU_NODES, {"iterations": iterations}, None)])),
        "mix": compile_workflow(
            fan_out(
                "mix",
                [
                    ("b", burn, CPU_NODES, {"iterations": iterations}, None),
                    ("w", io_wait, NODES, waits, None),
                ],
            )
        ),
    }

    def ours(key: str) -> Callable[[], Any]:
        def go() -> Any:
            result = engine.run(plans[key], settings=settings, executor=executor, cache=False)
            assert result.ok, result.errors
            return result.outputs

        return go

    expected = list(range(NODES))
    raw_sides: dict[str, Callable[[], Any]] = {
        "raw Ray tasks, @ray.remote (1 CPU each)": lambda: ray.get(
            [raw_task.remote(i, WAIT_S) for i in range(NODES)]
        ),
        f"raw Ray tasks, @ray.remote(num_cpus={FRACTION})": lambda: ray.get(
            [raw_fraction.remote(i, WAIT_S) for i in range(NODES)]
        ),
        "raw Ray, threaded actor (max_concurrency=16)": lambda: ray.get(
            [waiter.wait.remote(i, WAIT_S) for i in range(NODES)]
        ),
        "ThreadPoolExecutor(16) in this process": lambda: list(
            threads.map(lambda i: sleep_task(i, WAIT_S), range(NODES))
        ),
    }
    assert all(fn() == expected for fn in raw_sides.values())
    sides = {
        "rayweave, io_bound=True (warm pool)": ours("io"),
        f"rayweave, not declared (tasks, num_cpus={FRACTION})": ours("io_task"),
        **raw_sides,
    }
    io_times = dict(zip(sides, paired_medians(list(sides.values())), strict=True))
    floor = io_times["ThreadPoolExecutor(16) in this process"]

    def raw_cpu() -> list[int]:
        return ray.get([raw_burn.remote(i, iterations) for i in range(CPU_NODES)])

    cpu_ours, cpu_raw, mix = paired_medians([ours("cpu"), raw_cpu, ours("mix")], rounds=CPU_REPEATS)

    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Ray num_cpus={NUM_CPUS}; median of {REPEATS} timed runs ({CPU_REPEATS} for CPU and MIX) after one "
        f"warm-up run; load average {load}"
    )
    print(f"IO  {NODES} nodes x {WAIT_S} s wait{'':22} {'s':>7} {'x thread pool':>14}")
    for name, took in io_times.items():
        print(f"    {name:48} {took:7.3f} {took / floor:13.2f}x")
    ours_io = io_times["rayweave, io_bound=True (warm pool)"]
    print(
        f"    target: rayweave < {TARGET_S} s: {'yes' if ours_io < TARGET_S else 'NO'} ({ours_io:.3f} s, "
        f"{ours_io / floor:.2f}x the thread pool)"
    )
    print(
        f"CPU {CPU_NODES} nodes x {CPU_S} s CPU (as calibrated in a worker before the runs) on {NUM_CPUS} cores"
    )
    print(f"    {'rayweave (tasks)':48} {cpu_ours:7.3f}")
    print(f"    {'raw Ray tasks, @ray.remote':48} {cpu_raw:7.3f}")
    print(
        f"    target: rayweave <= 1.1x raw Ray: {'yes' if cpu_ours <= 1.1 * cpu_raw else 'NO'} "
        f"({cpu_ours / cpu_raw:.2f}x)"
    )
    ideal_mix = max(cpu_raw, floor)
    print(f"MIX {CPU_NODES} CPU nodes + {NODES} waits in one workflow")
    print(
        f"    {'rayweave':48} {mix:7.3f}   (the longer of the two alone: {ideal_mix:.3f} s, "
        f"{mix / ideal_mix:.2f}x)"
    )
    threads.shutdown()
    shutdown_ray()


if __name__ == "__main__":
    main()
