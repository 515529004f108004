"""The bubblewrap jail sandboxed node calls run in, and how a call's end becomes a result or a clear error.

A worker keeps one jail per plugin runtime environment (`Jail.shared`), started at its first sandboxed call:
`bwrap` starts the worker's own Python on `runner.py` — a fork server that runs each call in a fresh child and
kills whatever the call left behind before answering — in new PID, network, IPC and UTS namespaces (a user
namespace too when the worker is not root), with a read-only view of only what Python and the node need — the
interpreter, the shared libraries, the entries of the worker's `sys.path` in the Python installation or in
Ray's runtime environments, the plugin's own packages and rayweave's own `nodes` and `typesys` packages — a
fresh `/proc` and `/dev`, a size-limited `/scratch` (the only writable place besides the call's own folder
under `/io`; also home and working directory) and an environment holding only an allowlist and the plugin's own variables. The places of
`AccessPolicy.protected` (the installation's home, database, keys, caches), `~/.ray` (the Ray token) and Ray's
session folders outside the bound plugin code are never bound, or are hidden under an empty folder where a
bound folder holds them. When the worker runs as root, the jail runs as an unprivileged user of its own.

Limits: memory is a cgroup of each call where a memory controller is writable (`nodes.sandbox.cgroup`), else
the address space (`RLIMIT_AS`); CPU seconds, processes and file size are rlimits of each call's child; wall
time (the whole jail is killed, and started again for the next call) and the output's size are enforced here.
How a call ended is told from what was hit: the call cgroup's OOM kills, the CPU seconds the child used
against its limit, the child's own report; a kill none of them explains is reported as coming from outside. The jail
dies with this process (`--die-with-parent`), and the PID namespace takes every process in it along.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import math
import os
import pickle
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nodes.plugins.runtime import PLUGIN_CODE_VAR, PLUGIN_ENV_VAR
from nodes.sandbox.cgroup import JailCgroup, MemoryCgroups, server_pid
from nodes.sandbox.errors import (
    CpuTimeLimitExceeded,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    ProcessLimitExceeded,
    SandboxedNodeError,
    SandboxError,
    SandboxKilledError,
    SandboxUnavailableError,
    WallTimeLimitExceeded,
)
from nodes.sandbox.policy import SandboxLimits, SandboxPolicy
from nodes.sandbox.wire import loads_output

__all__ = ["CallResult", "check_available", "jail_command", "run_call"]

RUNNER = Path(__file__).with_name("runner.py")
# The protocol of `runner.py`, which runs as a script in the jail and so is not imported here (its own imports
# would close a cycle); tests/nodes/sandbox/test_jail.py checks both agree.
IO_DIR, REQUEST, OUTPUT, STDERR = "/io", "request.pkl", "output.pkl", "stderr.txt"
EXIT_MEMORY, EXIT_OUTPUT = 71, 72
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap); in a container it needs user namespaces "
    "or CAP_SYS_ADMIN — see docs/guides/sandbox.md — or mark the plugin trusted (RAYWEAVE_TRUSTED_PLUGINS)"
)
#: Shared libraries and their loader: bound read-only (a symlink such as /lib -> usr/lib stays a symlink).
SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache")
#: Variables of the worker the jail keeps; everything else (tokens, database URLs, cloud keys) stays out.
ENV_ALLOW = ("LANG", "LC_ALL", "TZ")
JAIL_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/scratch",
    "TMPDIR": "/scratch",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MALLOC_ARENA_MAX": "2",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
#: The folder of Ray's runtime environments (a plugin's code, wheels and pip environment live below it).
RUNTIME_RESOURCES = "runtime_resources"
#: Where Ray keeps its token (token authentication) and session folders: never visible in the jail.
RAY_SECRET_PATHS = ("~/.ray", "/tmp/ray/session_latest")
_SIGNAL_BASE = 128
#: The longest a new jail may take to get ready (its call server imports rayweave's modules first).
START_TIMEOUT_S = 120.0


class CallResult:
    """What a call gave back: the node's outputs and the events (log lines, progress) it reported."""

    def __init__(self, outputs: dict[str, Any], events: list[tuple[str, Mapping[str, Any]]]) -> None:
        self.outputs = outputs
        self.events = events


@functools.lru_cache(maxsize=8)
def check_available(bwrap: str) -> str:
    """The path of a working bubblewrap (checked once per process), or `SandboxUnavailableError`."""
    found = shutil.which(bwrap)
    if found is None:
        raise SandboxUnavailableError(f"no sandbox: {bwrap!r} was not found; {INSTALL_HINT}")
    # The jail's own shape (a new /proc in a new PID namespace is what container runtimes most often refuse).
    probe = [found, *_namespace_args(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    probe += ["--", sys.executable, "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, env={}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailableError(f"no sandbox: {found} cannot run ({exc}); {INSTALL_HINT}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise SandboxUnavailableError(
            f"no sandbox: {found} cannot start a jail here ({said}); {INSTALL_HINT}"
        )
    return found


def _namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        args.append("--unshare-user")
    return [*args, "--die-with-parent", "--new-session"]


def _rayweave_root() -> Path:
    import nodes

    return Path(nodes.__file__).resolve().parent.parent


def _code_paths(packages: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(paths to bind, entries for the jail's `sys.path`): rayweave's own `nodes` and `typesys` packages, the
    entries of the worker's `sys.path` inside the Python installation or a Ray runtime environment's
    resources, and the plugin's own top-level `packages` wherever they are. Not the rest of the path: a Ray
    worker's path starts with the driver's working directory (a home folder, `/tmp`...), never bound."""
    root = _rayweave_root()
    binds: list[str] = [str(root / "nodes"), str(root / "typesys")]
    path: list[str] = [str(root)]
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry) or entry in path:
            continue
        real = os.path.realpath(entry)
        python = any(real == p or real.startswith(p + "/") for p in prefixes)
        if python or RUNTIME_RESOURCES in Path(real).parts:
            path.append(entry)
            binds.append(entry)
    for package in packages:
        located = _locate(package)
        if located is not None:
            binds.append(located)
            if os.path.dirname(located) not in path:
                path.append(os.path.dirname(located))
    for extra in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)):
        if extra not in binds:
            binds.append(extra)
    return binds, path


def _locate(package: str) -> str | None:
    """The folder (or single file) of top-level module `package` on this process's path, found without
    importing it (None when it is not there: the call then fails naming the module)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return str(next(iter(spec.submodule_search_locations)))
    return spec.origin if spec.origin and os.path.isabs(spec.origin) else None


def _masks(binds: Iterable[str], protected: Iterable[str]) -> list[str]:
    """Protected places lying inside a bound folder: hidden under an empty folder (or /dev/null) in the jail."""
    args: list[str] = []
    roots = [Path(b) for b in binds]
    for place in [*protected, *(os.path.expanduser(p) for p in RAY_SECRET_PATHS)]:
        target = Path(os.path.realpath(place))
        if str(target).startswith(("/proc", "/sys", "/dev")) or not target.exists():
            continue
        if any(root == target or root in target.parents for root in roots):
            args += ["--tmpfs", str(target)] if target.is_dir() else ["--ro-bind", "/dev/null", str(target)]
    return args


def _bind_args(system: list[str], binds: list[str]) -> list[str]:
    """Read-only binds of `system` and `binds` at the same paths, leaving out those inside another bind, and
    the folders above them made first, traversable (bwrap would make them 0700, closed to the jail's user)."""
    places = sorted({os.path.normpath(p) for p in [*system, *binds]}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for place in places:
        if not any(place == k or place.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(place)
    parents = sorted(
        {str(a) for k in kept for a in Path(k).parents if str(a) != "/"}, key=lambda p: p.count("/")
    )
    args: list[str] = []
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for place in kept:
        args += ["--ro-bind", place, place]
    return args


def jail_command(
    bwrap: str,
    io_dir: str,
    scratch_bytes: int,
    protected: Iterable[str],
    config: Mapping[str, Any],
    env: Mapping[str, str],
    packages: Iterable[str] = (),
) -> list[str]:
    """The bwrap command line of a jail (see the module docstring); `env` is the jail's whole environment,
    `packages` the plugin's top-level packages."""
    binds, path = _code_paths(packages)
    args = [bwrap, *_namespace_args(), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    for place in SYSTEM_PATHS:
        if os.path.islink(place):
            args += ["--symlink", os.readlink(place), place]
    args += _bind_args([p for p in SYSTEM_PATHS if os.path.exists(p) and not os.path.islink(p)], binds)
    args += _masks(binds, protected)
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "01777", "--size", str(scratch_bytes), "--tmpfs", "/scratch"]
    args += ["--bind", io_dir, IO_DIR, "--ro-bind", str(RUNNER), "/runner.py"]
    args += ["--remount-ro", "/", "--chdir", "/scratch"]
    full = {**dict(config), "path": path}
    return [*args, "--", sys.executable, "-I", "-S", "/runner.py", json.dumps(full)]


def jail_env(plugin_env: Mapping[str, str]) -> dict[str, str]:
    """The jail's whole environment: `JAIL_ENV`, the allowlisted variables of the worker, the plugin's own."""
    env = dict(JAIL_ENV)
    env.update({k: os.environ[k] for k in ENV_ALLOW if k in os.environ})
    env.update({str(k): str(v) for k, v in plugin_env.items()})
    return env


def _uid() -> int:
    """The unprivileged user a root worker's jail runs as: one per worker process, so the process limit of one
    jail is not shared with the jails of other workers."""
    return 1_000_000 + os.getpid()


class Jail:
    """One running jail (the fork server of `runner.py`) of one plugin environment in this worker.

    Calls are serialized (one at a time per jail). A jail whose call ran past its wall time, or that could not
    be cleaned after a call, or whose server died, is stopped; the next call starts a new one.
    """

    # A class attribute rather than module state: filled on first use inside a worker, never at import.
    _shared: dict[tuple[Any, ...], Jail] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        bwrap: str,
        env: Mapping[str, str],
        protected: tuple[str, ...],
        scratch_bytes: int,
        packages: tuple[str, ...] = (),
    ) -> None:
        self.packages = packages
        self.bwrap = bwrap
        self.env = dict(env)
        self.protected = protected
        self.scratch_bytes = scratch_bytes
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        #: The jail's memory cgroup (made at its first call that asks for one; None: `RLIMIT_AS`).
        self.cgroup: JailCgroup | None = None
        self.private: str | None = None
        self.errors: Any = None

    @classmethod
    def shared(
        cls,
        policy: SandboxPolicy,
        plugin_env: Mapping[str, str],
        protected: Iterable[str],
        packages: Iterable[str] = (),
    ) -> Jail:
        """The jail of this worker for a plugin environment (made on first use; not started yet)."""
        bwrap = check_available(policy.bwrap)
        env = jail_env(plugin_env)
        tops = tuple(sorted({p.split(".", 1)[0] for p in packages}))
        key = (bwrap, tuple(sorted(env.items())), tuple(protected), policy.limits.output_bytes, tops)
        with cls._shared_lock:
            jail = cls._shared.get(key)
            if jail is None:
                if not cls._shared:
                    atexit.register(cls.stop_all)
                jail = cls._shared[key] = cls(bwrap, env, tuple(protected), policy.limits.output_bytes, tops)
            return jail

    @classmethod
    def stop_all(cls) -> None:
        """Stop every jail of this process (at exit: their folders are removed)."""
        with cls._shared_lock:
            jails = list(cls._shared.values())
        for jail in jails:
            held = jail.lock.acquire(timeout=1.0)  # at exit a call may hold it forever: stop the jail anyway
            try:
                jail.stop()
            finally:
                if held:
                    jail.lock.release()

    @property
    def io_dir(self) -> str:
        """The host folder the jail sees as /io (the calls' folders)."""
        assert self.private is not None
        return os.path.join(self.private, "io")

    def _start(self) -> subprocess.Popen[bytes]:
        self.private = tempfile.mkdtemp(prefix="rayweave-sandbox-")  # 0700: only this worker's user enters
        os.mkdir(self.io_dir)
        # The jail's user may enter /io but not add to it: it writes only in its call's own folder.
        os.chmod(self.io_dir, 0o711)
        config = {"uid": _uid() if os.geteuid() == 0 else None}
        command = jail_command(
            self.bwrap, self.io_dir, self.scratch_bytes, self.protected, config, self.env, self.packages
        )
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (open for the jail's life; `stop` closes it)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env={},
            start_new_session=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_S)
        if not ready or not self.process.stdout.readline():
            said = self._stderr().strip()[-1500:]
            self.stop()
            raise SandboxError(f"the sandbox did not start within {START_TIMEOUT_S:g} s; its stderr: {said}")
        return self.process

    def stop(self) -> None:
        """Kill the jail (every process in it) and remove its folders."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.errors is not None:
            self.errors.close()
            self.errors = None
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)
            self.private = None

    def _stderr(self) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0, os.SEEK_END)
        self.errors.seek(max(0, self.errors.tell() - 4000))
        return str(self.errors.read().decode(errors="replace"))

    def call(self, request: bytes, limits: SandboxLimits, cgroups: MemoryCgroups | None = None) -> CallResult:
        """Run one call (`request`: the pickled definition, inputs, params and run ids) under `limits`; its
        memory is limited by a call cgroup of `cgroups` when given (and one can be made), else by `RLIMIT_AS`."""
        with self.lock:
            process = self.process
            if process is None or process.poll() is not None:
                self.stop()
                process = self._start()
            folder = os.path.join(self.io_dir, uuid.uuid4().hex)
            os.mkdir(folder)
            if os.geteuid() == 0:  # the jail runs as a user of its own: the folder is that user's
                os.chown(folder, _uid(), _uid())
            os.chmod(folder, 0o700)
            try:
                with open(os.path.join(folder, REQUEST), "wb") as out:
                    out.write(request)
                os.chmod(os.path.join(folder, REQUEST), 0o644)
                cgroup, kills = self._cgroup(process, cgroups, limits)
                try:
                    reply = self._ask(process, folder, limits, address_space=cgroup is None)
                except BaseException:  # e.g. the task was cancelled: the call may still run, so the jail goes
                    self.stop()
                    raise
                oom = cgroup is not None and cgroup.oom_killed_since(kills)
                if reply is None:
                    said = self._stderr().strip()[-1500:]
                    self.stop()
                    if oom:
                        raise MemoryLimitExceeded(f"{_memory_message(limits)} {_OOM_NOTE}")
                    raise SandboxError(f"the sandbox stopped during the call; its stderr: {said}")
                try:
                    return _result(int(reply["code"]), folder, limits, cpu_s=reply.get("cpu_s"), oom=oom)
                finally:
                    if not reply.get("clean", False):
                        self.stop()
            finally:
                if self.private is not None:
                    _empty(self.io_dir)

    def _cgroup(
        self, process: subprocess.Popen[bytes], cgroups: MemoryCgroups | None, limits: SandboxLimits
    ) -> tuple[JailCgroup | None, int]:
        """The jail's memory cgroup limited for this call, and its OOM-kill count before it; (None, 0) when the
        call's memory is limited by `RLIMIT_AS` (no `cgroups`, or the cgroup cannot be made or written)."""
        try:
            if cgroups is None:
                if self.cgroup is not None:  # a call that asks for RLIMIT_AS in a jail that has a cgroup
                    self.cgroup.limit(None)
                return None, 0
            if self.cgroup is None:
                server = server_pid(process.pid)
                if server is None:
                    return None, 0
                cgroup = cgroups.jail()
                try:
                    cgroup.enter(server)
                except OSError:
                    cgroup.remove()
                    raise
                self.cgroup = cgroup
            return self.cgroup, self.cgroup.limit(limits.memory_bytes)
        except OSError:
            return None, 0

    def _ask(
        self, process: subprocess.Popen[bytes], folder: str, limits: SandboxLimits, *, address_space: bool
    ) -> dict[str, Any] | None:
        """The server's answer for the call in `folder`, or None when the server died during the call."""
        assert process.stdin is not None and process.stdout is not None
        limits_json = {**_limits_json(limits), "address_space": address_space}
        message = {"dir": os.path.basename(folder), "limits": limits_json}
        try:
            process.stdin.write((json.dumps(message) + "\n").encode())
            process.stdin.flush()
        except OSError:
            pass  # the server is gone: reading its answer says so
        ready, _, _ = select.select([process.stdout], [], [], limits.wall_s)
        if not ready:
            self.stop()
            raise WallTimeLimitExceeded(
                f"ran longer than its wall-time limit of {limits.wall_s:g} s and was stopped"
            )
        line = process.stdout.readline()
        if not line:
            return None
        reply = dict(json.loads(line))
        if reply.get("dir") != message["dir"]:
            self.stop()
            raise SandboxError(
                f"the sandbox answered for another call ({reply.get('dir')!r}); it was stopped"
            )
        return reply


def _limits_json(limits: SandboxLimits) -> dict[str, Any]:
    return {
        "memory_bytes": limits.memory_bytes,
        "cpu_s": limits.cpu_s,
        "processes": limits.processes,
        "output_bytes": limits.output_bytes,
    }


def _empty(folder: str) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def run_call(
    definition: Any,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    *,
    policy: SandboxPolicy,
    limits: SandboxLimits,
    protected: Iterable[str] = (),
    run: Mapping[str, Any] | None = None,
) -> CallResult:
    """Run `definition` (a plugin node definition) on `inputs` in this worker's jail of its plugin; its outputs
    and events, or the error saying what it did wrong (`SandboxLimitExceeded`, `SandboxedNodeError`,
    `UnsafeOutputError`, `SandboxUnavailableError`)."""
    plugin_env = dict(getattr(definition, "runtime_env", {}).get("env_vars", {}))
    cgroups = memory_cgroups(policy)  # before the first jail: at exit the jails stop before the cgroups go
    jail = Jail.shared(policy, plugin_env, protected, [str(getattr(definition, "module_name", ""))])
    ids = {"run_id": "", "node_id": "", "attempt": 1, **dict(run or {})}
    request = pickle.dumps(
        ("node", definition, dict(inputs), dict(params or {}), ids), protocol=pickle.HIGHEST_PROTOCOL
    )
    return jail.call(request, limits, cgroups)


def memory_cgroups(policy: SandboxPolicy) -> MemoryCgroups | None:
    """Where calls get a memory cgroup of their own: None when `policy` says not to (`memory_cgroup` false,
    `RAYWEAVE_SANDBOX_MEMORY_CGROUP=false`) or no memory controller is writable here (`RLIMIT_AS` then)."""
    return MemoryCgroups.here() if policy.memory_cgroup else None


def collect_in_jail(
    plugin_ref: str, modules: list[str], types_hook: str | None, policy: SandboxPolicy
) -> dict[str, Any]:
    """`nodes.plugins.remote.collect_specs` in this worker's jail of the plugin (reading an untrusted
    plugin's catalog imports its modules, which runs its code); runs in the plugin's runtime environment."""
    plugin_env = {key: os.environ[key] for key in (PLUGIN_ENV_VAR, PLUGIN_CODE_VAR) if key in os.environ}
    cgroups = memory_cgroups(policy)  # before the first jail (see `run_call`)
    jail = Jail.shared(policy, plugin_env, (), modules)
    request = pickle.dumps(
        ("collect", plugin_ref, list(modules), types_hook), protocol=pickle.HIGHEST_PROTOCOL
    )
    found: dict[str, Any] = jail.call(request, policy.limits, cgroups).outputs["out"]
    return found


def _result(
    code: int, folder: str, limits: SandboxLimits, *, cpu_s: float | None = None, oom: bool = False
) -> CallResult:
    """The outputs of a call whose child ended with `code` (128 + signal when killed) after `cpu_s` seconds of
    CPU, or the error saying which limit it hit (`oom`: its memory cgroup's OOM killer struck)."""
    signum = code - _SIGNAL_BASE if code > _SIGNAL_BASE else 0
    if oom:
        raise MemoryLimitExceeded(f"{_memory_message(limits)} {_OOM_NOTE}")
    if signum == signal.SIGXCPU:
        raise CpuTimeLimitExceeded(f"used more than its CPU-time limit of {limits.cpu_s:g} s and was stopped")
    if signum == signal.SIGKILL:
        # RLIMIT_CPU sends SIGKILL at its hard limit (a node that ignores SIGXCPU): only then is it the CPU limit.
        if cpu_s is not None and cpu_s >= cpu_soft_limit(limits) - 0.05:
            raise CpuTimeLimitExceeded(
                f"used more than its CPU-time limit of {limits.cpu_s:g} s and was stopped (SIGKILL)"
            )
        used = (
            f"it had used {cpu_s:.1f} s of its {limits.cpu_s:g} s of CPU" if cpu_s is not None else "unknown"
        )
        raise SandboxKilledError(
            f"was killed by signal 9 (SIGKILL) from outside the sandbox, not by one of its limits ({used}); "
            "the machine may have run short of memory (the kernel's OOM killer) or someone stopped it"
        )
    if code == EXIT_MEMORY:
        raise MemoryLimitExceeded(_memory_message(limits))
    if code == EXIT_OUTPUT or signum == signal.SIGXFSZ:
        raise OutputLimitExceeded(_output_message(limits))
    data = read_call_file(folder, OUTPUT, limits.output_bytes + 1)
    if data is None:
        said = (read_call_file(folder, STDERR, 1500, tail=True) or b"").decode(errors="replace").strip()
        how = f"exit status {code}"
        if signum:
            with contextlib.suppress(ValueError):
                how = f"killed by signal {signum}, {signal.Signals(signum).name}"
        raise SandboxError(f"the sandboxed call ended ({how}) without a result; its stderr: {said}")
    if len(data) > limits.output_bytes:
        raise OutputLimitExceeded(_output_message(limits))
    return _record(loads_output(data), limits)


def read_call_file(folder: str, name: str, most: int, *, tail: bool = False) -> bytes | None:
    """At most `most` bytes (the last ones with `tail`) of regular file `name` in the call's `folder`, or None.

    The jail's user may have put a symlink there (to /etc/shadow, say), or swapped the folder for one: the
    folder and the file are opened without following links, and only a regular file is read.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        parent = os.open(os.path.dirname(folder), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            here = os.open(os.path.basename(folder), flags | os.O_DIRECTORY, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=here)
        finally:
            os.close(here)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        if tail:
            source.seek(max(0, info.st_size - most))
        return source.read(most)


def _record(record: Any, limits: SandboxLimits) -> CallResult:
    if record[0] == "ok":
        _, outputs, events = record
        return CallResult(dict(outputs), list(events))
    _, kind, type_name, message, trace, events = record
    if kind == "memory":
        raise MemoryLimitExceeded(f"{_memory_message(limits)} ({type_name}: {message})")
    if kind == "processes":
        raise ProcessLimitExceeded(
            f"tried to start more than {limits.processes} processes or threads and was refused ({type_name}: "
            f"{message})"
        )
    if kind == "output":
        raise OutputLimitExceeded(f"{_output_message(limits)} ({type_name}: {message})")
    raise SandboxedNodeError(f"{type_name}: {message}", type_name, trace)


def cpu_soft_limit(limits: SandboxLimits) -> int:
    """The whole CPU seconds of `RLIMIT_CPU` for `limits` (SIGXCPU there, SIGKILL one second later)."""
    return max(1, math.ceil(limits.cpu_s))


_OOM_NOTE = "(the kernel stopped it in the call's memory cgroup)"


def _memory_message(limits: SandboxLimits) -> str:
    return f"tried to use more than its memory limit of {limits.memory_bytes // (1024 * 1024)} MB and was stopped"


def _output_message(limits: SandboxLimits) -> str:
    return f"wrote more than its output limit of {limits.output_bytes // (1024 * 1024)} MB and was stopped"


def limited(limits: SandboxLimits, declared_memory: int | None) -> SandboxLimits:
    """`limits` with the memory limit lowered to what the node declares it needs (`Resources.memory`)."""
    if declared_memory and declared_memory < limits.memory_bytes:
        from dataclasses import replace

        return replace(limits, memory_bytes=int(declared_memory))
    return limits
