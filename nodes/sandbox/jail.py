"""The bubblewrap jail one sandboxed node call runs in, and how its end becomes a result or a clear error.

Per call: a private host folder holds the request (and receives the output); `bwrap` starts the worker's own
Python on `runner.py` in new PID, network, IPC and UTS namespaces (a user namespace too when the worker is not
root), with a read-only view of only what Python and the node need — the interpreter, the shared libraries, the
entries of the worker's `sys.path` (the plugin's runtime environment among them) and rayweave's own `nodes` and
`typesys` packages — a fresh `/proc` and `/dev`, a size-limited `/scratch` (the only writable place, also its
home and working directory) and an environment holding only an allowlist and the plugin's own variables. The
places of `AccessPolicy.protected` (the installation's home, database, keys, caches), `~/.ray` (the Ray token)
and `/tmp/ray` outside the bound plugin code are never bound, or are hidden under an empty folder where a bound
folder holds them. When the worker runs as root, the runner becomes an unprivileged user of its own before
reading anything the plugin wrote.

Limits: address space, CPU seconds, processes and file size are rlimits set by the runner; wall time and the
output's size are enforced here. The jail dies with this process (`--die-with-parent`), and the PID namespace
takes every process the node started with it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nodes.sandbox.errors import (
    CpuTimeLimitExceeded,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    ProcessLimitExceeded,
    SandboxedNodeError,
    SandboxError,
    SandboxUnavailableError,
    WallTimeLimitExceeded,
)
from nodes.sandbox.policy import SandboxLimits, SandboxPolicy
from nodes.sandbox.runner import EXIT_MEMORY, EXIT_OUTPUT, IO_DIR, OUTPUT, REQUEST
from nodes.sandbox.wire import loads_output

__all__ = ["CallResult", "check_available", "jail_command", "run_call"]

RUNNER = Path(__file__).with_name("runner.py")
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
#: Where Ray keeps its token (token authentication) and session folders: never visible in the jail.
RAY_SECRET_PATHS = ("~/.ray", "/tmp/ray/session_latest")
#: Extra seconds after the wall limit before this process kills the jail itself (the runner is stuck).
GRACE_S = 2.0
_SIGNAL_BASE = 128


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
    probe = [found, *_namespace_args(), "--ro-bind", "/", "/", "--", sys.executable, "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, env={}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailableError(f"no sandbox: {found} cannot run ({exc}); {INSTALL_HINT}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise SandboxUnavailableError(
            f"no sandbox: {found} cannot make namespaces here ({said}); {INSTALL_HINT}"
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


def _code_paths() -> tuple[list[str], list[str]]:
    """(paths to bind, entries for the jail's `sys.path`): the worker's path, with rayweave's own packages
    bound one by one rather than the folder holding them (a checkout holds much more)."""
    root = _rayweave_root()
    own = [str(root / "nodes"), str(root / "typesys")]
    binds: list[str] = [*own]
    path: list[str] = [str(root)]
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        resolved = Path(entry).resolve()
        if resolved == root or resolved in root.parents:
            continue  # the checkout or a folder above it: only the packages are bound
        if entry not in path:
            path.append(entry)
            binds.append(entry)
    for extra in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)):
        if extra not in binds:
            binds.append(extra)
    return binds, path


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
    limits: SandboxLimits,
    protected: Iterable[str],
    config: Mapping[str, Any],
    env: Mapping[str, str],
) -> list[str]:
    """The bwrap command line of one call (see the module docstring); `env` is the jail's whole environment."""
    binds, path = _code_paths()
    args = [bwrap, *_namespace_args(), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    for place in SYSTEM_PATHS:
        if os.path.islink(place):
            args += ["--symlink", os.readlink(place), place]
    args += _bind_args([p for p in SYSTEM_PATHS if os.path.exists(p) and not os.path.islink(p)], binds)
    args += _masks(binds, protected)
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "01777", "--size", str(limits.output_bytes), "--tmpfs", "/scratch"]
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
    """Run `definition` (a plugin node definition) on `inputs` in a new jail; its outputs and events, or the
    error saying what it did wrong (`SandboxLimitExceeded`, `SandboxedNodeError`, `UnsafeOutputError`)."""
    bwrap = check_available(policy.bwrap)
    plugin_env = dict(getattr(definition, "runtime_env", {}).get("env_vars", {}))
    with tempfile.TemporaryDirectory(prefix="rayweave-sandbox-") as private:
        io_dir = os.path.join(private, "io")
        os.mkdir(io_dir)
        os.chmod(io_dir, 0o777)  # the jail's user writes the output here; `private` (0700) keeps others out
        request = os.path.join(io_dir, os.path.basename(REQUEST))
        with open(request, "wb") as out:
            pickle.dump((definition, dict(inputs), dict(params or {})), out, protocol=pickle.HIGHEST_PROTOCOL)
        config = {
            "limits": {
                "memory_bytes": limits.memory_bytes,
                "cpu_s": limits.cpu_s,
                "processes": limits.processes,
                "output_bytes": limits.output_bytes,
            },
            "uid": _uid() if os.geteuid() == 0 else None,
            "run": dict(run or {}),
        }
        command = jail_command(bwrap, io_dir, limits, protected, config, jail_env(plugin_env))
        code, stderr, timed_out = _run(command, limits.wall_s)
        output = os.path.join(io_dir, os.path.basename(OUTPUT))
        return _result(code, stderr, timed_out, output, limits)


def _run(command: list[str], wall_s: float) -> tuple[int, str, bool]:
    """Run the jail; (exit status, the end of its stderr, whether the wall limit stopped it)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, env={}, start_new_session=True
        )
        timed_out = False
        try:
            code = process.wait(timeout=wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            code = process.wait(timeout=GRACE_S + 30)
        except BaseException:  # the task was cancelled: the jail goes with it
            _kill(process)
            process.wait()
            raise
        errors.seek(0, os.SEEK_END)
        size = errors.tell()
        errors.seek(max(0, size - 4000))
        return code, errors.read().decode(errors="replace"), timed_out


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _result(code: int, stderr: str, timed_out: bool, output: str, limits: SandboxLimits) -> CallResult:
    if timed_out:
        raise WallTimeLimitExceeded(
            f"ran longer than its wall-time limit of {limits.wall_s:g} s and was stopped"
        )
    signum = code - _SIGNAL_BASE if code > _SIGNAL_BASE else 0
    if signum in (signal.SIGXCPU, signal.SIGKILL) and code != 0:
        raise CpuTimeLimitExceeded(
            f"used more than its CPU-time limit of {limits.cpu_s:g} s and was stopped"
            if signum == signal.SIGXCPU
            else f"was killed (SIGKILL), most likely past its CPU-time limit of {limits.cpu_s:g} s"
        )
    if code == EXIT_MEMORY:
        raise MemoryLimitExceeded(_memory_message(limits))
    if code == EXIT_OUTPUT or signum == signal.SIGXFSZ:
        raise OutputLimitExceeded(_output_message(limits))
    if not os.path.exists(output):
        tail = stderr.strip()[-1500:]
        raise SandboxError(
            f"the sandboxed call ended (exit status {code}) without a result; its stderr: {tail}"
        )
    size = os.path.getsize(output)
    if size > limits.output_bytes:
        raise OutputLimitExceeded(_output_message(limits))
    with open(output, "rb") as source:
        record = loads_output(source.read())
    return _record(record, limits)


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
