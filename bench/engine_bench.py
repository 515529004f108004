"""Engine benchmark: rayweave against raw Ray tasks (ray.remote with ObjectRef chaining) in the same process.

Run: `python -m bench.engine_bench` (about three minutes on a 2-core machine). Workloads (issue 4):

W1  fan-out of 1,000 tiny nodes into a sum          target: <= 1.3x raw with the optimizer off; < 0.25 s on
W2  a chain of 300 tiny nodes                        target: <= 1.3x raw off; >= 10x faster than raw on
W3  16 independent nodes sleeping 0.5 s             target: < 0.65 s
W4  8 independent CPU-bound nodes of 0.3 s, 2 cores  target: <= 1.2 x ideal (1.2 s); the ideal of the moment
                                                     (one node alone in a worker, times 4) is printed beside it
W5  rerun of W1 fully cached                         target: < 50 ms
MEM coordinator RSS growth over a 10,000-node run    target: < 200 MB

Both sides have the same shape: rayweave's W1 binds the 1,000 results to the list port of one `total` node
(a list binding, ADR 005), which runs as one task receiving the 1,000 object refs, as raw Ray's sum task does.
W3 and W4 join their nodes the same way. Workflows are compiled once before the timed runs (compile times
are printed apart): a rerun does not recompile. Every figure is the median of
`REPEATS` timed runs (`RATIO_REPEATS` for W1 and W2) after one warm-up run of each side; rayweave and raw Ray take turns run by run
(`paired_medians`), so a machine that speeds up or slows down meanwhile affects both alike. Ray gets 16
logical CPUs so that W3's 16 sleeping nodes can run at once (the machine still has its 2 physical cores,
which is what W4 measures).

Where W1's time goes with the optimizer off (2026-11-27, third session; CPU seconds per run summed over
processes from /proc, 2 cores, see ADR 007): raw Ray spends about 0.6 s in workers and 0.2 s in the driver;
rayweave about 0.77 s in workers and 0.3 s in the coordinator (the session before: 1.5 s and 0.7 s). Inside a
run each task's wrapper costs about 0.09 ms of CPU (spec, checks, context, retries, status record: code that
takes 10 µs in a warm loop, but every task of a fan-out starts with cold caches), and the coordinator about
0.1 ms per node on top of Ray's own submission (spec, node state, events, metrics).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.workflow import Workflow
from nodes import node

REPEATS = 7
#: Rounds for W1 and W2, whose targets are ratios to raw Ray: on a 2-core machine shared by 16 workers one
#: round's ratio spreads from about 0.9 to 1.6; a median of 15 rounds moved from 1.17x to 1.30x between runs
#: of the same code, where 60 rounds gave 1.19-1.20x (ADR 008, session 7). 31 rounds halve that spread's
#: variance, and `ratio_interval` prints how far the figure may still be off.
RATIO_REPEATS = 31
#: Samples for the bootstrap interval of a ratio of medians.
BOOTSTRAP_SAMPLES = 2000
LOGICAL_CPUS = 16


@node(plugin="bench", cheap=True)
def tiny(i: int) -> int:
    """A tiny node: i + 1."""
    return i + 1


@node(plugin="bench", cheap=True)
def total(xs: list[int]) -> int:
    """Sum of a list of numbers."""
    return sum(xs)


@node(plugin="bench", cache=False)
def nap(i: int, *, seconds: float) -> int:
    """Sleep `seconds`, return i."""
    time.sleep(seconds)
    return i


@node(plugin="bench", cache=False)
def burn(i: int, *, iterations: int) -> int:
    """CPU-bound loop of `iterations` steps."""
    total = 0
    for k in range(iterations):
        total += k % 7
    return i + total % 2


def _plus_one(i: int) -> int:
    return i + 1


def _sum_all(*xs: int) -> int:
    return sum(xs)


def raw_tasks() -> tuple[Any, Any]:
    """Raw Ray's tiny task (i + 1) and sum task, as remote functions (Ray must be initialized)."""
    import ray

    return ray.remote(_plus_one), ray.remote(_sum_all)


def fan_in(wf: Workflow, level: list[Any]) -> Any:
    """One `total` node over the handles in `level` (a list binding)."""
    return wf.add(f"total_{wf.name}", total, xs=level)


def w1_workflow(n: int = 1000) -> Workflow:
    wf = Workflow("w1")
    wf.output("total", fan_in(wf, [wf.add(f"t{i}", tiny, i=i) for i in range(n)]))
    return wf


def w2_workflow(n: int = 300) -> Workflow:
    wf = Workflow("w2")
    handle = wf.add("c0", tiny, i=0)
    for k in range(1, n):
        handle = wf.add(f"c{k}", tiny, i=handle)
    wf.output("out", handle)
    return wf


def parallel_workflow(name: str, definition: Any, count: int, params: dict[str, Any]) -> Workflow:
    wf = Workflow(name)
    wf.output("total", fan_in(wf, [wf.add(f"p{i}", definition, i=i, params=params) for i in range(count)]))
    return wf


def calibrate_burn(seconds: float) -> int:
    """Iterations of `burn`'s loop that take about `seconds` on one core."""
    iterations = 200_000
    while True:
        started = time.perf_counter()
        burn.target(0, iterations=iterations)
        took = time.perf_counter() - started
        if took > 0.05:
            return int(iterations * seconds / took)
        iterations *= 4


def reset_peak_rss(pid: int) -> bool:
    """Reset the peak resident set size (VmHWM) of process `pid`; False where that is not possible."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def peak_rss(pid: int) -> int:
    """The peak resident set size of process `pid` (bytes) since it started or since `reset_peak_rss`."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def median_time(fn: Callable[[], Any]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired_medians(*fns: Callable[[], Any], rounds: int = REPEATS) -> list[float]:
    """Median seconds of each of `fns`, run in turns (one warm-up each, then `rounds` rounds of one run of
    each): a machine that gets slower or faster during the benchmark affects every side alike."""
    return [statistics.median(spent) for spent in paired_times(*fns, rounds=rounds)]


def paired_times(*fns: Callable[[], Any], rounds: int = REPEATS) -> list[list[float]]:
    """Seconds of each run of each of `fns`, run in turns as `paired_medians` describes."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, spent in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - started)
    return times


def round_ratios(ours: list[float], raw: list[float]) -> str:
    """Each round's ratio of `ours` to `raw` and their median (robust to drift between rounds)."""
    ratios = [a / b for a, b in zip(ours, raw, strict=True)]
    low, high = ratio_interval(ours, raw)
    of_medians = statistics.median(ours) / statistics.median(raw)
    return (
        " ".join(f"{r:.2f}" for r in ratios)
        + f" -> median {statistics.median(ratios):.2f}x; ratio of medians {of_medians:.2f}x,"
        + f" 90% bootstrap interval {low:.2f}-{high:.2f}x"
    )


def ratio_interval(ours: list[float], raw: list[float], level: float = 0.9) -> tuple[float, float]:
    """A bootstrap interval of median(`ours`) / median(`raw`): rounds resampled with replacement (a round's
    two runs stay together), the ratio of medians of each resample, and the central `level` of those."""
    import random

    pairs = list(zip(ours, raw, strict=True))
    pick = random.Random(7)  # the same interval for the same times
    ratios = []
    for _ in range(BOOTSTRAP_SAMPLES):
        sample = pick.choices(pairs, k=len(pairs))
        ratios.append(statistics.median(a for a, _ in sample) / statistics.median(b for _, b in sample))
    ratios.sort()
    tail = (1 - level) / 2
    return ratios[int(tail * len(ratios))], ratios[int((1 - tail) * len(ratios)) - 1]


def main() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    import engine
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.cache.result_cache import CacheConfig, ResultCache
    from engine.compile import compile_workflow
    from engine.execution.ray.executor import RayExecutor

    home = Path(tempfile.mkdtemp(prefix="rayweave-bench-"))
    settings = Settings(home=home)
    ensure_ray(settings, num_cpus=LOGICAL_CPUS, include_dashboard=False)
    executor = RayExecutor()

    raw_tiny, raw_sum = raw_tasks()

    @ray.remote
    def raw_nap(i: int, seconds: float) -> int:
        time.sleep(seconds)
        return i

    @ray.remote
    def raw_burn(i: int, iterations: int) -> int:
        return int(burn.target(i, iterations=iterations))

    @ray.remote
    def timed_burn(iterations: int) -> float:
        started = time.perf_counter()
        burn.target(0, iterations=iterations)
        return time.perf_counter() - started

    def raw_w1() -> int:
        return int(ray.get(raw_sum.remote(*[raw_tiny.remote(i) for i in range(1000)])))

    def raw_w2() -> int:
        ref = raw_tiny.remote(0)
        for _ in range(299):
            ref = raw_tiny.remote(ref)
        return int(ray.get(ref))

    # Calibrated where the nodes run (a Ray worker, not this driver), as the median of several samples: one
    # sample in the driver was off by up to 30% from what a worker then took.
    calibrate = ray.remote(calibrate_burn)
    iterations = int(statistics.median(ray.get(calibrate.remote(0.3)) for _ in range(5)))

    def raw_w3() -> list[int]:
        return ray.get([raw_nap.remote(i, 0.5) for i in range(16)])

    def raw_w4() -> list[int]:
        return ray.get([raw_burn.remote(i, iterations) for i in range(8)])

    plans: dict[str, Any] = {}
    compile_s: dict[str, float] = {}
    for key, wf, optimize in (
        ("w1_off", w1_workflow(), False),
        ("w1_on", w1_workflow(), True),
        ("w2_off", w2_workflow(), False),
        ("w2_on", w2_workflow(), True),
        ("w3", parallel_workflow("w3", nap, 16, {"seconds": 0.5}), True),
        ("w4", parallel_workflow("w4", burn, 8, {"iterations": iterations}), True),
    ):
        started = time.perf_counter()
        plans[key] = compile_workflow(wf, optimize=optimize)
        compile_s[key] = time.perf_counter() - started

    def ours(key: str) -> Callable[[], Any]:
        def go() -> Any:
            result = engine.run(plans[key], settings=settings, executor=executor, cache=False)
            assert result.ok, result.errors
            return result.outputs

        return go

    expected_w1 = sum(range(1, 1001))
    assert raw_w1() == expected_w1 and ours("w1_off")()["total"] == expected_w1 == ours("w1_on")()["total"]
    assert raw_w2() == 300 == ours("w2_off")()["out"]

    rows: list[tuple[str, float, float | None, str, bool]] = []
    raw1_times, w1_off_times, w1_on_times = paired_times(
        raw_w1, ours("w1_off"), ours("w1_on"), rounds=RATIO_REPEATS
    )
    raw1, w1_off, w1_on = (statistics.median(t) for t in (raw1_times, w1_off_times, w1_on_times))
    rows.append(("W1 fan-out 1000, optimizer off", w1_off, raw1, "<= 1.3x raw", w1_off <= 1.3 * raw1))
    rows.append(("W1 fan-out 1000, optimizer on", w1_on, raw1, "< 0.25 s", w1_on < 0.25))
    raw2_times, w2_off_times, w2_on_times = paired_times(
        raw_w2, ours("w2_off"), ours("w2_on"), rounds=RATIO_REPEATS
    )
    raw2, w2_off, w2_on = (statistics.median(t) for t in (raw2_times, w2_off_times, w2_on_times))
    rows.append(("W2 chain 300, optimizer off", w2_off, raw2, "<= 1.3x raw", w2_off <= 1.3 * raw2))
    rows.append(("W2 chain 300, optimizer on", w2_on, raw2, ">= 10x faster than raw", raw2 / w2_on >= 10))
    raw3, w3 = paired_medians(raw_w3, ours("w3"))
    rows.append(("W3 16 x sleep 0.5 s", w3, raw3, "< 0.65 s", w3 < 0.65))
    # The target is the (1.2x of 1.2 s). Beside it, the ideal of the moment, measured in the same
    # rounds: what one node takes alone in a worker (8 of them on 2 cores cannot take less than 4 times that).
    # This machine's core speed drifts by up to a third within a run, so a node calibrated for 0.3 s may take
    # 0.25-0.4 s a minute later, for raw Ray as for rayweave.
    alone_times: list[float] = []

    def one_alone() -> None:
        alone_times.append(ray.get(timed_burn.remote(iterations)))

    raw4, w4, _ = paired_medians(raw_w4, ours("w4"), one_alone)
    alone = statistics.median(alone_times[1:])  # without the warm-up run
    ideal4 = 4 * alone
    rows.append(("W4 8 x CPU 0.3 s on 2 cores", w4, raw4, "<= 1.44 s (1.2x ideal)", w4 <= 1.2 * 1.2))

    cache_dir = home / "w5-cache"
    engine.run(
        plans["w1_on"],
        settings=settings,
        executor=executor,
        cache=ResultCache(CacheConfig(disk_dir=cache_dir)),
    )

    def rerun_from_disk() -> Any:
        fresh = ResultCache(CacheConfig(disk_dir=cache_dir))  # a new process would start like this
        result = engine.run(plans["w1_on"], settings=settings, executor=executor, cache=fresh)
        assert result.outputs == {"total": expected_w1}
        return result

    w5 = median_time(rerun_from_disk)
    rows.append(("W5 W1 rerun, fully cached (disk level)", w5, raw1, "< 0.05 s", w5 < 0.05))
    warm = ResultCache(CacheConfig(disk_dir=cache_dir))
    w5_mem = median_time(lambda: engine.run(plans["w1_on"], settings=settings, executor=executor, cache=warm))
    rows.append(("W5 W1 rerun, fully cached (memory level)", w5_mem, raw1, "< 0.05 s", w5_mem < 0.05))

    print()
    print(f"{'workload':44} {'rayweave s':>11} {'raw Ray s':>10} {'ratio':>7}  target / met")
    for name, ours_s, raw_s, target, met in rows:
        ratio = f"{ours_s / raw_s:6.2f}x" if raw_s else "   -   "
        raw_text = f"{raw_s:10.3f}" if raw_s is not None else f"{'-':>10}"
        print(f"{name:44} {ours_s:11.3f} {raw_text} {ratio}  {target} / {'yes' if met else 'NO'}")
    print(f"W1 optimizer off, ratio per round: {round_ratios(w1_off_times, raw1_times)}")
    print(f"W2 optimizer off, ratio per round: {round_ratios(w2_off_times, raw2_times)}")
    print(
        f"W4 one node alone in a worker: {alone:.3f} s (median of the rounds; calibrated for 0.3 s), so the "
        f"ideal for 8 on 2 cores is {ideal4:.3f} s now; rayweave {w4 / ideal4:.2f}x of it, raw Ray "
        f"{raw4 / ideal4:.2f}x"
    )
    print("compile (s, once per workflow): " + ", ".join(f"{k} {v:.3f}" for k, v in compile_s.items()))

    # Memory: the coordinator's RSS before and after a 10,000-node run (optimizer off: 10,000+ tasks).
    big = compile_workflow(w1_workflow(10_000), optimize=False)
    coordinator = executor.coordinator()
    info = ray.get(coordinator.process_info.remote())
    before = info["rss_bytes"]
    peak_known = reset_peak_rss(info["pid"])
    started = time.perf_counter()
    result = engine.run(big, settings=settings, executor=executor, cache=False)
    took = time.perf_counter() - started
    after = ray.get(coordinator.process_info.remote())["rss_bytes"]
    # The end of a big run gives freed memory back (ADR 008), including what earlier runs left, so the RSS
    # after it can be below the RSS before; the peak during the run is the figure the target is judged on.
    peak = peak_rss(info["pid"]) if peak_known else max(before, after)
    growth_mb = (peak - before) / 2**20
    print(
        f"MEM 10,000-node run ({len(big.nodes)} tasks, {took:.1f} s, {result.status}): coordinator RSS "
        f"{before / 2**20:.0f} MB before, peak {peak / 2**20:.0f} MB during, {after / 2**20:.0f} MB after; "
        f"growth to the peak {growth_mb:.0f} MB (target < 200 MB: {'yes' if growth_mb < 200 else 'NO'})"
    )
    shutdown_ray()


if __name__ == "__main__":
    main()
