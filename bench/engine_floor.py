"""What a coordinator actor costs before any rayweave code runs (analysis for issue 4's W1 target).

Raw Ray's W1 (1,000 tiny tasks into one sum) submitted from the driver, against the same shape submitted by
an async actor at a driver's priority (as rayweave's coordinator is, ADR 006) with a 941-byte argument per task
(the size of a packed task spec), in three variants: no completion tracking; one `ObjectRef._on_completed`
callback per task (how the coordinator learns that a node ended); and two returns per task (outputs + status)
with the callback. Prints the median of 7 runs per variant, three rounds.

Run: `.venv/bin/python -m bench.engine_floor` (about a minute on a 2-core machine).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TASKS = 1000
SPEC = b"x" * 941


def main() -> None:
    """Measure raw Ray's W1 and the three actor variants; print the medians."""
    import ray

    from bench.engine_bench import raw_tasks
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings

    ensure_ray(
        Settings(home=Path(tempfile.mkdtemp(prefix="rayweave-floor-"))), num_cpus=16, include_dashboard=False
    )

    tiny, total = raw_tasks()
    submitter = _submitter(total)
    variants: dict[str, Callable[[], Any]] = {
        "raw Ray, from the driver": lambda: ray.get(total.remote(*[tiny.remote(i) for i in range(TASKS)])),
    }

    def through_actor(mode: str) -> Callable[[], Any]:
        return lambda: ray.get(submitter.run.remote(mode))

    for mode in ("one return", "one return + callback", "two returns + callback"):
        variants[f"actor: {mode}"] = through_actor(mode)
    _report(_measure(variants), baseline="raw Ray, from the driver")
    shutdown_ray()


def _submitter(total: Any) -> Any:
    """The async actor, at a driver's priority, that submits the W1 tasks and sums them with `total`."""
    import ray

    @ray.remote
    def one(spec: bytes, i: int) -> int:
        return i + 1

    @ray.remote
    def two(spec: bytes, i: int) -> tuple[int, bytes]:
        return i + 1, b"m" * 60

    @ray.remote(num_cpus=0)
    class Submitter:
        async def run(self, mode: str) -> int:
            from engine.execution.ray.priority import take_driver_priority

            take_driver_priority()
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            left = [TASKS]

            def finished(_: Any) -> None:
                left[0] -= 1
                if left[0] == 0:
                    loop.call_soon_threadsafe(done.set_result, None)

            outs = [self.submit(mode, i, finished) for i in range(TASKS)]
            result: int = await total.remote(*outs)
            if mode != "one return":
                await done
            return result

        def submit(self, mode: str, i: int, finished: Callable[[Any], None]) -> Any:
            if mode == "two returns + callback":
                out, meta = two._remote(  # type: ignore[attr-defined]
                    args=[SPEC, i], kwargs={}, num_returns=2, name=f"w/t{i}"
                )
                meta._on_completed(finished)
                return out
            out = one._remote(args=[SPEC, i], kwargs={}, name=f"w/t{i}")  # type: ignore[attr-defined]
            if mode == "one return + callback":
                out._on_completed(finished)
            return out

    return Submitter.remote()  # type: ignore[attr-defined]


def _median_time(fn: Callable[[], Any]) -> float:
    """The median of 7 timed calls of `fn`, after one warm-up call."""
    fn()
    times = []
    for _ in range(7):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _measure(variants: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Three rounds of every variant in turn: each round's median time per variant."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(3):
        for name, fn in variants.items():
            results[name].append(_median_time(fn))
    return results


def _report(results: dict[str, list[float]], baseline: str) -> None:
    raw = statistics.median(results[baseline])
    for name, times in results.items():
        mid = statistics.median(times)
        print(f"{name:36} {mid:6.3f} s  {mid / raw:5.2f}x   rounds: {', '.join(f'{t:.3f}' for t in times)}")


if __name__ == "__main__":
    main()
