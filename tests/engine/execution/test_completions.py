"""The coordinator's completion tracker: every tracked ref is reported once, with its value or its error."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from engine.execution.ray.completions import CompletionTracker

pytestmark = pytest.mark.usefixtures("ray_session")


def _tasks() -> tuple[Any, Any, Any]:
    import ray

    @ray.remote
    def value(i: int, delay: float = 0.0) -> int:
        time.sleep(delay)
        return i

    @ray.remote(max_retries=0)
    def boom() -> None:
        raise ValueError("boom")

    @ray.remote(max_retries=0)
    def sleeper() -> None:
        time.sleep(60)

    return value, boom, sleeper


def test_reports_every_ref_once_with_its_value_or_error() -> None:
    import ray

    value, boom, sleeper = _tasks()

    async def scenario() -> dict[str, Any]:
        tracker = CompletionTracker(asyncio.get_running_loop())
        seen: dict[str, list[Any]] = {}
        everything = asyncio.get_running_loop().create_future()
        names = [f"v{i}" for i in range(200)] + ["slow", "boom", "cancelled"]

        def record(name: str, result: Any) -> None:
            seen.setdefault(name, []).append(result)
            if len(seen) == len(names) and not everything.done():
                everything.set_result(None)

        for i in range(200):
            tracker.add(value.remote(i), lambda r, n=f"v{i}": record(n, r))
        tracker.add(value.remote(-1, 0.3), lambda r: record("slow", r))
        tracker.add(boom.remote(), lambda r: record("boom", r))
        stuck = sleeper.remote()
        tracker.add(stuck, lambda r: record("cancelled", r))
        await asyncio.sleep(0.2)
        ray.cancel(stuck, force=True)
        await asyncio.wait_for(everything, 30)
        await asyncio.sleep(0.1)  # a duplicate report would arrive by now
        return seen

    seen = asyncio.run(scenario())
    assert all(len(results) == 1 for results in seen.values())
    assert [seen[f"v{i}"][0] for i in range(200)] == list(range(200))
    assert seen["slow"] == [-1]
    assert isinstance(seen["boom"][0], ray.exceptions.RayTaskError)
    assert "boom" in str(seen["boom"][0])
    assert isinstance(
        seen["cancelled"][0], ray.exceptions.TaskCancelledError | ray.exceptions.WorkerCrashedError
    )


def test_a_failing_callback_does_not_lose_the_rest_of_its_batch() -> None:
    value, _, _ = _tasks()

    async def scenario() -> list[int]:
        tracker = CompletionTracker(asyncio.get_running_loop())
        got: list[int] = []
        refs = [value.remote(i) for i in range(20)]
        import ray

        ray.get(refs)  # all ready: they arrive in one batch

        def callback(result: int) -> None:
            if result == 3:
                raise RuntimeError("a bug in one run")
            got.append(result)

        for ref in refs:
            tracker.add(ref, callback)
        deadline = time.monotonic() + 10
        while len(got) < 19 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return got

    assert sorted(asyncio.run(scenario())) == [i for i in range(20) if i != 3]


def test_tasks_that_end_before_older_ones_are_reported_without_waiting_for_them(tmp_path: Path) -> None:
    import ray

    value, _, _ = _tasks()
    release = tmp_path / "release"

    @ray.remote(num_cpus=0)
    def held(marker: str) -> str:  # runs until the test lets it end
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        return "held"

    async def scenario() -> list[str]:
        tracker = CompletionTracker(asyncio.get_running_loop())
        order: list[str] = []
        quick_done = asyncio.get_running_loop().create_future()
        held_done = asyncio.get_running_loop().create_future()
        tracker.add(held.remote(str(release)), lambda r: (order.append(r), held_done.set_result(None)))

        def quick(result: Any) -> None:
            order.append("quick")
            if order.count("quick") == 300 and not quick_done.done():
                quick_done.set_result(None)

        for i in range(300):  # submitted after the held task, which stays in front of them
            tracker.add(value.remote(i), quick)
        await asyncio.wait_for(quick_done, 60)
        release.touch()
        await asyncio.wait_for(held_done, 60)  # nothing left pending for the next test
        return order

    assert asyncio.run(scenario()) == ["quick"] * 300 + ["held"]
