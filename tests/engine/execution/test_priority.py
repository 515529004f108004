"""The coordinator's CPU priority helper."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from engine.execution.ray.priority import may_raise_priority

# Runs in a fresh interpreter: lowering niceness must not leak into the test session.
_CHILD = textwrap.dedent(
    """
    import os, threading
    from engine.execution.ray.priority import take_driver_priority

    os.nice(5)
    ready, done, seen = threading.Event(), threading.Event(), []

    def worker():
        ready.set()
        done.wait(5)
        seen.append(os.getpriority(os.PRIO_PROCESS, 0))

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(5)
    ok = take_driver_priority()
    done.set()
    thread.join(5)
    print(int(ok), os.getpriority(os.PRIO_PROCESS, 0), seen[0])
    """
)


def test_take_driver_priority_sets_every_thread_where_permitted() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    ok_flag, main_nice, thread_nice = (int(x) for x in out.stdout.split())
    if may_raise_priority():  # the other thread too: Linux keeps a niceness per thread
        assert (ok_flag, main_nice, thread_nice) == (1, 0, 0)
    else:  # not permitted: nothing changes, and no error
        assert (ok_flag, main_nice, thread_nice) == (0, 5, 5)
