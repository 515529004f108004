"""Memory limits of sandboxed calls through the cgroup memory controller, where this process may write it.

A cgroup limit counts the memory a call actually uses (resident pages, page cache, its `/scratch` files),
where `RLIMIT_AS` counts address space (which some libraries reserve far beyond what they use). It needs a
memory controller this process may make cgroups in:

- **cgroup v1** (a `memory` hierarchy): child cgroups of this process's own memory cgroup, when it is
  writable (root on most hosts, or a delegated folder);
- **cgroup v2** (the unified hierarchy): a cgroup that hands the memory controller to its children
  (`memory` in its `cgroup.subtree_control`) and that this process may write: its own cgroup, or — since v2
  forbids processes in a cgroup that hands controllers down — its parent (systemd's `Delegate=yes` layout,
  where the worker runs in a leaf of the delegated folder).

`MemoryCgroups.here()` finds one (once per process) and makes this worker's folder in it,
`rayweave-sandbox-<pid>`, with a leaf `idle` that jails' call servers wait in between calls. For each call the
worker makes a leaf `call-<id>` with the call's limit (v1: `memory.limit_in_bytes` and
`memory.memsw.limit_in_bytes` when swap accounting exists; v2: `memory.max`, `memory.swap.max` 0), moves the
jail's call server into it before the call starts — the call's child, forked then, is born in it, and so is
everything the child starts; the server's own pages stay charged where they were — and afterwards moves the
server back to `idle`, reads whether the kernel killed a process for the limit (v1: `oom_kill` of
`memory.oom_control`; v2: `oom_kill` of `memory.events`) and removes the leaf. Where nothing is writable,
`here()` is None and the call runs under `RLIMIT_AS` instead (`nodes.sandbox.runner.apply_limits`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import time
import uuid
from pathlib import Path

__all__ = ["CallCgroup", "MemoryCgroups", "server_pid"]

PREFIX = "rayweave-sandbox-"
IDLE = "idle"


def _mounts() -> tuple[Path | None, Path | None, str]:
    """(the v1 memory hierarchy's mount point, the v2 unified mount point, the v1 mount's root)."""
    v1: Path | None = None
    v2: Path | None = None
    v1_root = "/"
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as lines:
        for line in lines:
            fields = line.split()
            if " - " not in line:
                continue
            dash = fields.index("-")
            fstype, options = fields[dash + 1], fields[dash + 3].split(",")
            if fstype == "cgroup" and "memory" in options and v1 is None:
                v1, v1_root = Path(fields[4]), fields[3]
            elif fstype == "cgroup2" and v2 is None:
                v2 = Path(fields[4])
    return v1, v2, v1_root


def _own_paths() -> tuple[str | None, str | None]:
    """(this process's v1 memory cgroup, its v2 cgroup), as /proc/self/cgroup names them."""
    v1: str | None = None
    v2: str | None = None
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as lines:
        for line in lines:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" and controllers == "":
                v2 = path
            elif "memory" in controllers.split(","):
                v1 = path
    return v1, v2


def _inside(mount: Path, root: str, path: str) -> Path:
    relative = path
    if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
        relative = path[len(root.rstrip("/")) :]
    return mount / relative.lstrip("/")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as out:
        out.write(value)


def _read(path: Path) -> str:
    with open(path) as source:
        return source.read()


def _counter(path: Path, name: str) -> int | None:
    """The value of `name` in a flat-keyed cgroup file (`memory.events`, `memory.oom_control`), None if absent."""
    with contextlib.suppress(OSError, ValueError):
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    return None


def _remove(folder: Path, tries: int = 100) -> bool:
    """Remove an empty cgroup; its last processes may take a moment to be gone (EBUSY meanwhile)."""
    for _ in range(tries):
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)
    return False


def server_pid(bwrap_pid: int) -> int | None:
    """The host PID of a jail's call server: the child of bwrap's own child (bwrap, then the PID namespace's
    init, then the server). None when it is not (or no longer) there."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = _read(Path("/proc", entry, "stat"))
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    for init in parents.get(bwrap_pid, []):
        children = parents.get(init, [])
        if len(children) == 1:
            return children[0]
    return None


class CallCgroup:
    """The cgroup of one call (see the module docstring): made with the call's limit, the call server moved in
    before the call and back out after it, then removed."""

    def __init__(self, owner: MemoryCgroups, limit_bytes: int) -> None:
        self.owner = owner
        self.path = owner.base / f"call-{uuid.uuid4().hex[:12]}"
        os.mkdir(self.path)
        try:
            if owner.version == 1:
                _write(self.path / "memory.limit_in_bytes", str(limit_bytes))
                memsw = self.path / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # swap accounting: swap may not stand in for memory
                    _write(memsw, str(limit_bytes))
            else:
                _write(self.path / "memory.max", str(limit_bytes))
                swap = self.path / "memory.swap.max"
                if swap.exists():
                    _write(swap, "0")
        except OSError:
            _remove(self.path)
            raise

    def enter(self, pid: int) -> None:
        """Move process `pid` (the call server) in: what it forks from now on is charged here."""
        _write(self.path / "cgroup.procs", str(pid))

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for its memory limit (v1 kernels before 4.13 do
        not count OOM kills: there, whether the limit was ever hit, `memory.failcnt`)."""
        if self.owner.version == 2:
            return (_counter(self.path / "memory.events", "oom_kill") or 0) > 0
        kills = _counter(self.path / "memory.oom_control", "oom_kill")
        if kills is None:
            with contextlib.suppress(OSError, ValueError):
                return int(_read(self.path / "memory.failcnt")) > 0
            return False
        return kills > 0

    def close(self, pid: int | None) -> None:
        """Move the call server (if it still runs) back to `idle` and remove this cgroup (retried later by
        `MemoryCgroups.sweep` while processes the call left are still dying)."""
        if pid is not None:
            with contextlib.suppress(OSError):
                _write(self.owner.idle / "cgroup.procs", str(pid))
        if not _remove(self.path, tries=20):
            self.owner.leftovers.append(self.path)


class MemoryCgroups:
    """This worker's folder of call cgroups in a writable memory controller (`here()`; None where there is
    none)."""

    def __init__(self, version: int, base: Path) -> None:
        self.version = version
        self.base = base
        self.idle = base / IDLE
        self.leftovers: list[Path] = []

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def here() -> MemoryCgroups | None:
        """This process's call-cgroup folder, made on first use (and removed at exit); None when no memory
        controller is writable here."""
        v1_mount, v2_mount, v1_root = _mounts()
        v1_path, v2_path = _own_paths()
        candidates: list[tuple[int, Path]] = []
        if v1_mount is not None and v1_path is not None:
            candidates.append((1, _inside(v1_mount, v1_root, v1_path)))
        if v2_mount is not None and v2_path is not None:
            own = _inside(v2_mount, "/", v2_path)
            candidates += [(2, own), (2, own.parent)]
        for version, parent in candidates:
            found = MemoryCgroups._make(version, parent)
            if found is not None:
                atexit.register(found.remove)
                return found
        return None

    @staticmethod
    def _make(version: int, parent: Path) -> MemoryCgroups | None:
        if not os.access(parent, os.W_OK):
            return None
        if version == 2:
            with contextlib.suppress(OSError):
                if "memory" not in _read(parent / "cgroup.subtree_control").split():
                    return None
        _sweep_stale(parent)
        base = parent / f"{PREFIX}{os.getpid()}"
        try:
            os.makedirs(base, exist_ok=True)
            if version == 2:
                _write(base / "cgroup.subtree_control", "+memory")
            os.makedirs(base / IDLE, exist_ok=True)
            found = MemoryCgroups(version, base)
            CallCgroup(found, 1 << 30).close(None)  # the limits can be written: a probe
        except OSError:
            for folder in (base / IDLE, base):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            return None
        return found

    def call(self, limit_bytes: int) -> CallCgroup:
        """A new call cgroup with `limit_bytes` of memory (raises `OSError` when it cannot be made)."""
        self.sweep()
        return CallCgroup(self, limit_bytes)

    def sweep(self) -> None:
        """Remove call cgroups that could not be removed before (their processes are gone by now)."""
        self.leftovers = [p for p in self.leftovers if not _remove(p, tries=1)]

    def remove(self) -> None:
        """Remove this worker's folder (at exit)."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.base):
                if entry.is_dir() and entry.name != IDLE:
                    _remove(Path(entry.path), tries=5)
        for folder in (self.idle, self.base):
            _remove(folder, tries=5)


def _sweep_stale(parent: Path) -> None:
    """Remove the folders of workers that are gone (killed before their exit handler ran)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if not entry.name.startswith(PREFIX) or not entry.name[len(PREFIX) :].isdigit():
                continue
            pid = int(entry.name[len(PREFIX) :])
            if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
                continue
            leftover = MemoryCgroups(0, Path(entry.path))
            leftover.remove()
