"""Measured resource usage per node attempt (issue 20): a node's final event carries its CPU-seconds and the
rise of its worker's peak memory, on Ray and in-process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import engine
from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.execution.events import Event
from engine.execution.ray.executor import RayExecutor
from nodes import Catalog, node
from nodes.states import EventType, RunStatus

MIB = 2**20


@node(plugin="usageprobe", cache=False, deterministic=False)
def burn(x: int, *, cpu_s: float) -> int:
    """Spin on the CPU for `cpu_s` seconds of this thread's CPU time (not wall time: the machine is loaded)."""
    start = time.thread_time()
    total = 0
    while time.thread_time() - start < cpu_s:
        total += sum(range(1000))
    return x + (total & 1)


@node(plugin="usageprobe", cache=False, deterministic=False)
def allocate(x: int, *, mib: int) -> int:
    """Hold `mib` MiB of touched memory for a moment, then return its length."""
    block = bytes(range(256)) * (mib * MIB // 256)
    return x + len(block) // MIB


def _catalog() -> Catalog:
    catalog = Catalog.builtin()
    catalog.add(burn)
    catalog.add(allocate)
    return catalog


DOC = {
    "format": "rayweave.workflow/1",
    "name": "usage",
    "inputs": {"x": {"type": "Int"}},
    "nodes": {
        "burn": {"type": "usageprobe/burn@1", "in": {"x": "$inputs.x"}, "params": {"cpu_s": 0.3}},
        "allocate": {"type": "usageprobe/allocate@1", "in": {"x": "$inputs.x"}, "params": {"mib": 50}},
    },
    "outputs": {"b": "burn.out", "a": "allocate.out"},
}


def _finished(executor: Any, tmp_path: Path) -> dict[str, dict[str, Any]]:
    events: list[Event] = []
    result = engine.run(
        DOC,
        {"x": 1},
        catalog=_catalog(),
        settings=Settings(home=tmp_path / "home"),
        executor=executor,
        cache=False,
        on_event=events.append,
    )
    assert result.status is RunStatus.SUCCEEDED, result
    return {str(e.node): dict(e.payload) for e in events if e.type is EventType.NODE_SUCCEEDED}


def _check(finished: dict[str, dict[str, Any]]) -> None:
    burned, allocated = finished["burn"], finished["allocate"]
    # CPU time of the node's thread: 0.3 s spent, plus a little of the wrapper (generous: a loaded machine).
    assert 0.28 <= burned["cpu_s"] <= 1.5, burned
    assert allocated["cpu_s"] < 1.5, allocated
    # 50 MiB touched: the worker's peak resident memory rose by about that much.
    assert 40 * MIB <= allocated["memory_bytes"] <= 400 * MIB, allocated
    assert burned["output_bytes"] == allocated["output_bytes"] == 8  # one Int each


def test_a_node_on_ray_records_its_cpu_seconds_and_memory(ray_session: RayConnection, tmp_path: Path) -> None:
    _check(_finished(RayExecutor(), tmp_path))


def test_a_node_in_process_records_its_cpu_seconds_and_memory(tmp_path: Path) -> None:
    _check(_finished("local", tmp_path))


def test_both_ways_of_reading_the_peak_agree() -> None:
    # Kernels whose per-thread ru_maxrss keeps an older peak take the /proc/self/status way; both must see
    # the same 50 MiB rise.
    from engine.execution import usage

    for fast in (True, False):
        token = usage.start()._replace(fast=fast)
        block = bytes(range(256)) * (50 * MIB // 256)
        used = usage.finish(token)
        del block
        assert used.memory_bytes is not None and 40 * MIB <= used.memory_bytes <= 400 * MIB, (fast, used)


def test_output_sizes_are_known_where_cheap_and_null_elsewhere() -> None:
    import numpy as np
    import pyarrow as pa

    from engine.execution.usage import outputs_bytes

    table = pa.table({"x": list(range(1000))})
    assert (
        outputs_bytes({"t": table, "b": b"abc", "s": "h\u00e9", "n": np.zeros(4)})
        == table.nbytes + 3 + 3 + 32
    )
    assert outputs_bytes({"t": table, "rows": [1, 2]}) is None  # a list is not walked
