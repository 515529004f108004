"""Measured resource usage of one node attempt: CPU-seconds and peak memory (issue 20).

`start()` before the node body and `finish(token)` after it cost about 15 microseconds together (two `getrusage`
calls, a write to `/proc/self/clear_refs`, a read of `/proc/self/statm`; and a read of `/proc/self/status` on
kernels whose per-thread `ru_maxrss` does not follow the reset), so every attempt is measured.

What the figures mean:

- ``cpu_s``: user + system CPU time of the thread that ran the node body (`RUSAGE_THREAD`). Threads the node
  starts itself (a thread pool, a BLAS library's threads) are not counted; work done in other processes
  (a subprocess, a Ray task the node submits) neither.
- ``memory_bytes``: how far the process's resident set rose above its size when the attempt started, at its
  highest (the kernel's RSS high-water mark, reset at the start of the attempt where Linux allows it). It is a
  property of the process, not of the node: when several nodes run at the same time in one process (threads of
  the in-process executor, a threaded actor), each one's figure includes what the others allocated meanwhile,
  and one attempt's reset can lower another's peak. Memory the process had already freed to its allocator and
  takes again is not counted as growth. Without ``/proc`` (not Linux) it is None. The reset is the process's:
  anything else reading its peak (`VmHWM`, `ru_maxrss`) afterwards sees the peak since the last attempt began.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["Usage", "UsageToken", "finish", "outputs_bytes", "start", "value_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: How far above the resident size a just-reset `ru_maxrss` may read (pages touched between the two reads).
_SLACK = 1 << 20
#: pid -> this process's open (clear_refs, statm, status) descriptors, or None where there is no /proc.
_FDS: dict[int, tuple[int, int, int] | None] = {}


class UsageToken(NamedTuple):
    """What `start` noted: the thread's CPU time and the process's resident bytes (None: unknown)."""

    cpu: float
    rss: int | None
    #: True when `ru_maxrss` of the thread follows the reset high-water mark (see `start`).
    fast: bool = False


class Usage(NamedTuple):
    """What an attempt used: CPU-seconds of its thread and the rise of the process's peak resident memory."""

    cpu_s: float
    memory_bytes: int | None


def _fds() -> tuple[int, int, int] | None:
    """This process's open (clear_refs, statm, status) descriptors, opened on first use (None: no /proc)."""
    pid = os.getpid()
    if pid in _FDS:
        return _FDS[pid]
    fds: tuple[int, int, int] | None
    try:
        fds = (
            os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC),
            os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC),
            os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC),
        )
    except OSError:
        fds = None
    _FDS[pid] = fds
    return fds


def start() -> UsageToken:
    """Reset the process's RSS high-water mark, then note the thread's CPU time and the resident size."""
    fds = _fds()
    if fds is None:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return UsageToken(usage.ru_utime + usage.ru_stime, None)
    try:
        os.write(fds[0], b"5")  # "5": reset the peak RSS to the current RSS (Linux 4.0+)
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        rss = int(os.pread(fds[1], 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return UsageToken(usage.ru_utime + usage.ru_stime, None)
    # `ru_maxrss` follows the reset on kernels that report the live mark for a thread (then `finish` needs no
    # read of /proc/self/status); where it stays above the resident size it includes an older peak.
    fast = usage.ru_maxrss * 1024 <= rss + _SLACK
    return UsageToken(usage.ru_utime + usage.ru_stime, rss, fast)


def finish(token: UsageToken) -> Usage:
    """The usage since `token` (see the module docstring for what each figure measures)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    cpu_s = max(usage.ru_utime + usage.ru_stime - token.cpu, 0.0)
    if token.rss is None:
        return Usage(cpu_s, None)
    if token.fast:
        return Usage(cpu_s, max(usage.ru_maxrss * 1024 - token.rss, 0))
    fds = _fds()
    if fds is None:
        return Usage(cpu_s, None)
    try:
        status = os.pread(fds[2], 4096, 0)
        at = status.index(b"VmHWM:")
        peak = int(status[at + 6 : status.index(b"kB", at)]) * 1024
    except (OSError, ValueError):
        return Usage(cpu_s, None)
    return Usage(cpu_s, max(peak - token.rss, 0))


def value_bytes(value: Any) -> int | None:
    """The in-memory size of a node's output value where it is cheap to know, else None: the bytes of `bytes`,
    `bytearray` and `memoryview`, the UTF-8 length of a string, the buffers of Arrow tables, batches and arrays
    and of NumPy arrays (`nbytes`), 8 for a number and 0 for None. Containers (lists, dicts, objects) are not
    walked: None."""
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bool | int | float):
        return 8
    module = type(value).__module__
    if module.startswith(("pyarrow", "numpy")):
        size = getattr(value, "nbytes", None)
        return int(size) if isinstance(size, int) else None
    return None


def outputs_bytes(outputs: Mapping[str, Any]) -> int | None:
    """The summed `value_bytes` of a node's output values; None when one of them is not cheap to size."""
    total = 0
    for value in outputs.values():
        size = value_bytes(value)
        if size is None:
            return None
        total += size
    return total
