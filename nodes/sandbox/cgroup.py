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
`rayweave-sandbox-<pid>`. Each jail gets a leaf of its own, `jail-<id>` (`JailCgroup`; v2: `memory.swap.max`
0), and its call server is moved in once, when the jail starts: each call's child, forked by the server, is
born there with everything it starts. Before each call the worker sets the leaf's limit to what is charged
there at that moment — the idle server's own pages — plus the call's limit (v1: `memory.limit_in_bytes`, and
`memory.memsw.limit_in_bytes` where swap is accounted, so swap cannot stand in; v2: `memory.max`); after it,
it reads whether the kernel killed a process for the limit (v1: `oom_kill` of `memory.oom_control`; v2:
`oom_kill` of `memory.events`). Moving a process between cgroups waits for an RCU grace period (about 10 ms
on a busy machine), so no call moves one; writing a limit does not wait. The leaf goes with its jail, the
folder at exit. Where nothing is writable, `here()` is None and calls run under `RLIMIT_AS` instead
(`nodes.sandbox.runner.apply_limits`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import time
import uuid
from pathlib import Path

__all__ = ["JailCgroup", "MemoryCgroups", "server_pid"]

PREFIX = "rayweave-sandbox-"


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
    for attempt in range(tries):
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if attempt + 1 < tries:
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


class JailCgroup:
    """The memory cgroup of one jail (see the module docstring): its call server is moved in once, and each
    call's limit is the server's own charge at that moment plus the call's limit."""

    def __init__(self, owner: MemoryCgroups) -> None:
        self.owner = owner
        self.path = owner.base / f"jail-{uuid.uuid4().hex[:12]}"
        os.mkdir(self.path)
        if owner.version == 2:
            swap = self.path / "memory.swap.max"
            try:
                if swap.exists():  # swap may not stand in for memory
                    _write(swap, "0")
            except OSError:
                _remove(self.path)
                raise

    def enter(self, pid: int) -> None:
        """Move process `pid` (the call server) in: what it forks from now on is charged here."""
        _write(self.path / "cgroup.procs", str(pid))

    def usage(self) -> int:
        """The bytes charged here now (v1 `memory.usage_in_bytes`, v2 `memory.current`)."""
        name = "memory.usage_in_bytes" if self.owner.version == 1 else "memory.current"
        return int(_read(self.path / name))

    def limit(self, call_bytes: int | None) -> int:
        """Limit the next call to `call_bytes` beyond what is charged here now (None: no limit); returns the
        OOM-kill count before the call, for `oom_killed_since`."""
        if self.owner.version == 2:
            _write(self.path / "memory.max", "max" if call_bytes is None else str(self.usage() + call_bytes))
        else:
            value = "-1" if call_bytes is None else str(self.usage() + call_bytes)
            memsw = self.path / "memory.memsw.limit_in_bytes"
            # v1 keeps memsw >= memory: raising goes memsw first, lowering memory first; try one, then the other.
            order = [self.path / "memory.limit_in_bytes", memsw] if memsw.exists() else []
            try:
                for path in order or [self.path / "memory.limit_in_bytes"]:
                    _write(path, value)
            except OSError:
                for path in reversed(order):
                    _write(path, value)
        return self.oom_kills()

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for the limit (v1 kernels before 4.13 do not count them:
        there, how often the limit was hit, `memory.failcnt`)."""
        if self.owner.version == 2:
            return _counter(self.path / "memory.events", "oom_kill") or 0
        kills = _counter(self.path / "memory.oom_control", "oom_kill")
        if kills is None:
            with contextlib.suppress(OSError, ValueError):
                return int(_read(self.path / "memory.failcnt"))
            return 0
        return kills

    def oom_killed_since(self, before: int) -> bool:
        """Whether the kernel killed a process here for its limit since the count was `before`."""
        return self.oom_kills() > before

    def remove(self) -> None:
        """Remove this cgroup once its jail is stopped (later, from `MemoryCgroups.sweep`, while the kernel
        still releases its last processes)."""
        if not _remove(self.path, tries=1):
            self.owner.leftovers.append(self.path)


class MemoryCgroups:
    """This worker's folder of call cgroups in a writable memory controller (`here()`; None where there is
    none)."""

    def __init__(self, version: int, base: Path) -> None:
        self.version = version
        self.base = base
        self.leftovers: list[Path] = []

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def here() -> MemoryCgroups | None:
        """This process's folder of jail cgroups, made on first use (and removed at exit); None when no memory
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
            found = MemoryCgroups(version, base)
            probe = found.jail()
            try:
                probe.limit(1 << 30)  # the limits can be written
            finally:
                _remove(probe.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(base)
            return None
        return found

    def jail(self) -> JailCgroup:
        """A new cgroup for a jail (raises `OSError` when it cannot be made)."""
        self.sweep()
        return JailCgroup(self)

    def sweep(self) -> None:
        """Remove jail cgroups that could not be removed before (their processes are gone by now)."""
        self.leftovers = [p for p in self.leftovers if not _remove(p, tries=1)]

    def remove(self) -> None:
        """Remove this worker's folder (at exit)."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.base):
                if entry.is_dir():
                    _remove(Path(entry.path), tries=5)
        _remove(self.base, tries=5)


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
