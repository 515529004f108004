"""Hostile nodes for the sandbox tests: each tries one thing a sandboxed node must not be able to do."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import time
from typing import Any

from nodes import context, node


class Payload:
    """Unpickling it runs a shell command: the classic way to escape through a pickle."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


@node
def scale(values: list[float], factor: float) -> dict[str, float]:
    """Well-behaved: scales values, logs a line, writes and reads a scratch file."""
    context.current().logger.info("scaling %d values", len(values))
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "scratch.txt")
    with open(path, "w") as out:
        out.write(repr(factor))
    with open(path) as source:
        factor = float(source.read())
    return {f"v{i}": v * factor for i, v in enumerate(values)}


@node
def read_file(path: str) -> str:
    """Reads any file it is told to (/etc/shadow, the Ray token)."""
    with open(path) as source:
        return source.read()


@node
def connect(port: int) -> str:
    """Opens a TCP connection to a loopback service (PostgreSQL's port)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        return str(sock.getpeername())


@node
def fork_bomb(depth: int) -> int:
    """Forks without end."""
    while True:
        os.fork()


@node
def allocate(gigabytes: int) -> int:
    """Allocates and touches a huge buffer (a zeroed `bytearray` would stay untouched address space)."""
    buffer = b"\x01" * (gigabytes * 1024**3)
    return len(buffer)


@node
def reserve(gigabytes: int) -> int:
    """Reserves address space it never touches (numpy's zeros are calloc'd pages, mapped but not written)."""
    import numpy

    buffer = numpy.zeros(gigabytes * 1024**3, dtype=numpy.uint8)
    return int(buffer.size)


@node
def die(signum: int) -> int:
    """Kills itself with `signum` (to the worker, as if killed from outside the sandbox)."""
    os.kill(os.getpid(), signum)
    return signum


@node
def spin_stubborn(seconds: float) -> int:
    """Busy-loops ignoring SIGXCPU, so only the CPU limit's SIGKILL (one second later) stops it."""
    import signal

    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return count


@node
def spin(seconds: float) -> int:
    """Busy-loops for `seconds` of wall time (far past the CPU limit)."""
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


@node
def nap(seconds: float) -> float:
    """Sleeps (uses no CPU) past the wall-time limit."""
    time.sleep(seconds)
    return seconds


@node
def write_file(path: str) -> str:
    """Writes a file outside the scratch folder."""
    with open(path, "w") as out:
        out.write("pwned")
    return path


@node
def environment(probe: int) -> dict[str, str]:
    """Returns every environment variable it can see (looking for credentials)."""
    return dict(os.environ)


@node
def native_system(command: str) -> int:
    """Calls libc's system() through ctypes (a native call the Python-level checks never see)."""
    libc = ctypes.CDLL("libc.so.6")
    status = int(libc.system(command.encode()))
    if status != 0:
        raise RuntimeError(f"system({command!r}) failed with status {status}")
    return status


@node
def flood(megabytes: int) -> str:
    """Returns an output bigger than the output limit."""
    return "x" * (megabytes * 1024 * 1024)


@node
def smuggle(command: str) -> Any:
    """Returns a value whose unpickling would run `command` in whoever reads it."""
    return Payload(command)


@node
def litter(seconds: float) -> int:
    """Leaves a file in the scratch folder and a process running behind it."""
    with open(os.path.join(os.environ["TMPDIR"], "left-behind"), "w") as out:
        out.write("x")
    pid = os.fork()
    if pid == 0:
        time.sleep(seconds)
        os._exit(0)
    return pid


@node
def look_around(probe: int) -> dict[str, list[str]]:
    """What earlier calls left: the processes it can see and the scratch folder's files."""
    processes = sorted(p for p in os.listdir("/proc") if p.isdigit())
    return {"processes": processes, "scratch": sorted(os.listdir(os.environ["TMPDIR"]))}


@node
def link_out(target: str, files: list[str]) -> int:
    """Replaces its call's `files` with links to `target` (a file of the worker's host) and dies without output,
    hoping the worker reads the target back (into the error message, or as its output)."""
    folder = os.path.dirname(os.readlink("/proc/self/fd/2"))  # its stderr is a file in the call's folder
    for file in files:
        path = os.path.join(folder, file)
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.symlink(target, path)
    os._exit(3)
