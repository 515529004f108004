"""Giving freed heap memory back to the operating system after a big run (engine.execution.ray.memory)."""

from __future__ import annotations

import sys

import pytest

from engine.execution.ray.memory import release_free_memory


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_memory_freed_by_a_big_run_goes_back_to_the_system() -> None:
    # 200 MB in 2 KB blocks, as a run's in-flight task specs are: larger than Python's small-object allocator
    # takes, so they live on the C heap, which keeps its pages after they are freed.
    blocks = [bytes(2048) + i.to_bytes(4, "little") for i in range(100_000)]
    keep = blocks[-1]
    peak = _rss_mb()
    del blocks
    kept = _rss_mb()
    assert release_free_memory()
    released = _rss_mb()
    assert released < kept - 100, f"RSS {peak:.0f} MB at peak, {kept:.0f} MB freed, {released:.0f} MB trimmed"
    assert keep[-4:] == (99_999).to_bytes(4, "little")  # what is still in use stays
