"""Where W1's CPU goes: CPU seconds per run by process (and by thread of the coordinator), rayweave against
raw Ray, from /proc (Linux only). The tool behind the CPU figures of ADR 007.

Run: `.venv/bin/python -m bench.engine_cpu` (about a minute on a 2-core machine). For each side it runs W1
(1,000 tiny nodes into a sum, optimizer off) `RUNS` times after two warm-up runs, and prints wall seconds per
run and CPU seconds per run of the driver, the coordinator (by thread name), the raylet, the GCS, the node
workers (`ray::` processes) and everything else, summed over the processes alive at the end.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.engine_bench import LOGICAL_CPUS, raw_tasks, w1_workflow

RUNS = 8


def _cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of `pid` so far, by thread name (threads of one name added up)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = collections.defaultdict(float)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        found[name] += (int(fields[11]) + int(fields[12])) / tick
    return dict(found)


def _cpu_by_process(driver: int, coordinator: int) -> dict[str, float]:
    """CPU seconds so far of every process, grouped by its role."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = collections.defaultdict(float)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline") as cmdline:
                command = cmdline.read().replace("\0", " ")
        except OSError:
            continue
        if pid == driver:
            role = "driver"
        elif pid == coordinator:
            role = "coordinator"
        elif "raylet" in command:
            role = "raylet"
        elif "gcs_server" in command:
            role = "gcs"
        elif command.startswith("ray::") and "DashboardAgent" not in command:
            role = "workers"
        else:
            role = "other"
        found[role] += (int(fields[11]) + int(fields[12])) / tick
    return dict(found)


def _measure(
    run: Callable[[], Any], driver: int, coordinator: int
) -> tuple[float, dict[str, float], dict[str, float]]:
    for _ in range(2):
        run()
    before = _cpu_by_process(driver, coordinator)
    threads_before = _cpu_by_thread(coordinator)
    started = time.perf_counter()
    for _ in range(RUNS):
        run()
    wall = (time.perf_counter() - started) / RUNS
    after = _cpu_by_process(driver, coordinator)
    threads_after = _cpu_by_thread(coordinator)
    per_role = {role: (after[role] - before.get(role, 0.0)) / RUNS for role in after}
    per_thread = {
        name: (after_s - threads_before.get(name, 0.0)) / RUNS for name, after_s in threads_after.items()
    }
    return wall, per_role, per_thread


def main() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    import engine
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.compile import compile_workflow
    from engine.execution.ray.executor import RayExecutor

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="rayweave-cpu-")))
    ensure_ray(settings, num_cpus=LOGICAL_CPUS, include_dashboard=False)
    executor = RayExecutor()
    plan = compile_workflow(w1_workflow(), optimize=False)

    raw_tiny, raw_sum = raw_tasks()

    def raw() -> int:
        return int(ray.get(raw_sum.remote(*[raw_tiny.remote(i) for i in range(1000)])))

    def ours() -> Any:
        result = engine.run(plan, settings=settings, executor=executor, cache=False)
        assert result.ok, result.errors
        return result

    ours()
    coordinator = int(ray.get(executor.coordinator().process_info.remote())["pid"])
    driver = os.getpid()
    for name, run in (("raw Ray", raw), ("rayweave", ours), ("raw Ray", raw), ("rayweave", ours)):
        wall, roles, threads = _measure(run, driver, coordinator)
        role_text = "  ".join(
            f"{role} {seconds:.3f}" for role, seconds in sorted(roles.items()) if seconds > 0.001
        )
        print(f"{name:9} wall {wall:.3f} s/run  CPU s/run: {role_text}  total {sum(roles.values()):.3f}")
        if name == "rayweave":
            busy = sorted(threads.items(), key=lambda item: -item[1])
            print("          coordinator threads: " + "  ".join(f"{n} {s:.3f}" for n, s in busy if s > 0.002))
    shutdown_ray()


if __name__ == "__main__":
    main()
