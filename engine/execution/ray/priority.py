"""CPU priority of the run coordinator.

Ray starts every worker process at niceness `worker_niceness` (15 by default) and leaves drivers at 0, so a
driver that submits tasks is scheduled ahead of the tasks it already submitted. The coordinator actor is such a
driver for every run, but as an actor it gets a worker's niceness and competes on equal terms with the node
tasks it is submitting: on a busy machine it then submits more slowly than tiny tasks finish, every worker lease
runs dry after one or two tasks, and Ray spends its time granting and returning leases (measured on the 1,000-node
fan-out: 682 lease requests per run instead of 63). `take_driver_priority` gives the coordinator's threads a
driver's niceness where the process may (root, or CAP_SYS_NICE); elsewhere it changes nothing. See ADR 006 for
why this is not done through a runtime environment (Ray would copy it into every task and split the worker pool).
"""

from __future__ import annotations

import os
from pathlib import Path

#: A Ray driver's niceness, which the coordinator takes when it may.
DRIVER_NICENESS = 0


def take_driver_priority() -> bool:
    """Set every thread of this process to a driver's niceness; False when not permitted (or not Linux).

    Linux keeps a niceness per thread, so each thread is set (threads started later inherit it from theirs).
    """
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    done = False
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) > DRIVER_NICENESS:
                os.setpriority(os.PRIO_PROCESS, tid, DRIVER_NICENESS)
            done = True
        except (OSError, AttributeError):  # EPERM without the privilege; a thread that just ended
            continue
    return done and os.getpriority(os.PRIO_PROCESS, 0) <= DRIVER_NICENESS


def may_raise_priority() -> bool:
    """True when this process may lower its niceness (root, or CAP_SYS_NICE in its effective set)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 23))  # CAP_SYS_NICE
    except (OSError, ValueError):
        pass
    return False
