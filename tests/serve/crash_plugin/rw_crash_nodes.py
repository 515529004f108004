"""The node of the server crash tests (tests/serve/test_serve_crash.py), loaded by the test server as a plugin
from `RAYWEAVE_PLUGIN_DIRS`, so it runs in Ray workers and goes through the server's live plugin catalog.

Each execution writes itself down in the directory `log`: `<run>.<node>.started` gets the worker's pid when the
body starts, `<run>.<node>.done` when it finishes. A node whose body finished twice really ran twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from nodes import context, node


def _note(path: Path) -> None:
    with path.open("a") as f:
        f.write(f"{os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


@node(plugin="rwcrash", version="1.0.0", cheap=False, cache=False)
def tick(value: int, *, seconds: float, log: str) -> int:
    """Note the start, sleep `seconds`, note the end; returns value + 1."""
    ctx = context.current()
    stem = Path(log) / f"{ctx.run_id}.{ctx.node_id}"
    _note(stem.with_name(stem.name + ".started"))
    time.sleep(seconds)
    _note(stem.with_name(stem.name + ".done"))
    return value + 1
