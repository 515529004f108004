"""What runs inside the jail: a small fork server that runs each node call in a fresh child process.

Started by the worker's own Python (`python -I -S runner.py CONFIG`), it begins with the standard library only:
it gives up root (when the worker runs as root) for the jail's own user, makes itself non-dumpable (no process
of that user can trace it or read its memory), puts the bound code on `sys.path` and imports rayweave's own
modules once — never the plugin's, so no plugin code ever runs in this process — and says `{"ready": true}`.
Then, for each control line
(JSON: `dir`, the call's folder under `/io`, and `limits`) it forks a child that applies the limits, reads the
request — `("node", definition, inputs, params, run ids)`, or `("collect", plugin, modules, types hook)` to read
the plugin's catalog, pickled by the worker — from `/io/DIR/request.pkl`,
runs the node and writes `("ok", outputs, events)` or `("error", kind, type, message, traceback, events)` to
`/io/DIR/output.pkl` with the allowlisted pickle of `nodes.sandbox.wire`. `kind` names the limit a failure comes
from (`memory`, `processes`, `output`) or is empty.

When the child has ended, the server kills every other process of the jail (whatever the node left running)
and empties `/scratch`, then answers one JSON line: the child's exit status (128 + signal when a signal ended
it), the CPU seconds it used (which tells a kill at the CPU limit from one from outside) and whether the jail is
clean again. Nothing of one call is left for the next: no process, no file, and
the server's memory never held a call's data.

CONFIG is JSON: `path` (entries put first on `sys.path`) and `uid` (the unprivileged user to become when started
as root, or null).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import pickle
import resource
import shutil
import signal
import sys
import time
import traceback
from typing import Any

IO_DIR = "/io"
SCRATCH = "/scratch"
REQUEST = "request.pkl"
OUTPUT = "output.pkl"
STDERR = "stderr.txt"
#: Exit statuses of a call's child itself: it failed, ran out of memory, or its output was too big.
EXIT_FAILED, EXIT_MEMORY, EXIT_OUTPUT = 70, 71, 72
#: The most events (log lines, progress) a sandboxed call reports.
MAX_EVENTS = 1000
_SIGNAL_BASE = 128
_PR_SET_DUMPABLE = 4


def apply_limits(limits: dict[str, Any]) -> None:
    """CPU seconds, processes (threads count too; the server is one), file size, no core dumps, and the address
    space unless the call's memory cgroup limits its memory (`address_space` false)."""
    cpu = max(1, math.ceil(float(limits["cpu_s"])))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    processes = int(limits["processes"]) + 1
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["output_bytes"]), int(limits["output_bytes"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("address_space", True):
        memory = int(limits["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def drop_root(uid: int | None) -> None:
    """Become `uid` (group too, no supplementary groups) when running as root; capabilities go with it."""
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def not_dumpable() -> None:
    """No process of the jail's user may trace this one or read its memory (`PR_SET_DUMPABLE` 0)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def limit_kind(exc: BaseException) -> str:
    """The limit an exception comes from: `memory`, `processes`, `output`, or ''."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            break
        if isinstance(seen, MemoryError):
            return "memory"
        if isinstance(seen, OSError) and seen.errno == errno.EAGAIN:
            return "processes"  # fork/clone refused: RLIMIT_NPROC
        if isinstance(seen, OSError) and seen.errno in (errno.EFBIG, errno.ENOSPC):
            return "output"
        if isinstance(seen, RuntimeError) and "can't start new thread" in str(seen):
            return "processes"
        seen = seen.__cause__ or seen.__context__
    return ""


def _text(value: Any) -> str:
    try:
        return str(value)
    except BaseException:  # a plugin's exception whose __str__ fails
        return f"<{type(value).__name__} whose message cannot be shown>"


def call(request: bytes) -> Any:
    """Run the node of `request` and return what the output file holds."""
    from nodes import context
    from nodes.access import AccessPolicy

    events: list[tuple[str, Any]] = []

    def emit(event_type: str, payload: Any) -> None:
        if len(events) < MAX_EVENTS:
            events.append((str(event_type), dict(payload)))

    try:
        kind, *rest = pickle.loads(request)
        del request
        if kind == "collect":  # reading the plugin's catalog: importing its modules runs its code
            from nodes.plugins.remote import collect_specs

            plugin_ref, modules, types_hook = rest
            return ("ok", {"out": collect_specs(plugin_ref, modules, types_hook)}, events)
        definition, inputs, params, run = rest
        ctx = context.NodeContext(run["run_id"], run["node_id"], run["attempt"], emit, AccessPolicy())
        with context.use(ctx):
            target = definition.resolve()  # the plugin's own definition: calling it here runs it unjailed
            instance = target.new_instance() if target.spec.kind == "class" else None
            outputs = target.invoke(inputs, params, instance=instance)
        return ("ok", outputs, events)
    except BaseException as exc:  # everything the node raised goes back as data
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return ("error", limit_kind(exc), type(exc).__name__, _text(exc), text[-20000:], events)


def write_output(path: str, result: Any) -> None:
    """Write `result` with the allowlisted pickle (a value that cannot be written becomes an error)."""
    from nodes.sandbox.wire import dumps_output

    try:
        data = dumps_output(result)
    except BaseException as exc:
        kind = limit_kind(exc)
        message = f"the node's outputs could not be written: {type(exc).__name__}: {_text(exc)}"
        data = pickle.dumps(("error", kind, type(exc).__name__, message, "", []))
    try:
        with open(path, "wb") as out:
            out.write(data)
    except OSError as exc:
        if exc.errno in (errno.EFBIG, errno.ENOSPC):
            os._exit(EXIT_OUTPUT)
        raise


def child(folder: str, limits: dict[str, Any], control: int) -> None:
    """One call, in the forked child: never returns."""
    try:
        os.close(control)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        err = os.open(os.path.join(folder, STDERR), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(err, 1)
        os.dup2(err, 2)
        with open(os.path.join(folder, REQUEST), "rb") as source:
            request = source.read()
        apply_limits(limits)
        me = os.getpid()
        result = call(request)
        if os.getpid() == me:  # a process the node forked that got here leaves silently
            write_output(os.path.join(folder, OUTPUT), result)
    except BaseException as exc:
        try:
            os.write(2, f"sandbox call failed: {type(exc).__name__}: {_text(exc)}\n".encode())
        finally:
            os._exit(EXIT_MEMORY if limit_kind(exc) == "memory" else EXIT_FAILED)
    os._exit(0)


def _others() -> list[int]:
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _wipe(folder: str) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            for root, dirs, _ in os.walk(entry.path):
                for name in dirs:
                    os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
            os.chmod(entry.path, 0o700)
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def clean() -> bool:
    """Kill every process of the jail but this one (and the jail's init), empty /scratch; False if it fails."""
    for _ in range(2000):
        if not _others():
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)  # every process this user may signal here, except this one and init
        _reap()
        time.sleep(0.001)
    else:
        return False
    try:
        _wipe(SCRATCH)
        if os.access("/dev/shm", os.W_OK):
            _wipe("/dev/shm")
    except OSError:
        return False
    return True


def serve() -> None:
    """Answer calls until stdin closes or the jail cannot be cleaned (see the module docstring)."""
    config = json.loads(sys.argv[1])
    drop_root(config.get("uid"))
    not_dumpable()
    sys.path[:0] = list(config["path"])
    import gc

    import nodes.access
    import nodes.context
    import nodes.plugins.remote
    import nodes.sandbox.wire  # noqa: F401 (imported once here, not in every call)

    gc.collect()
    gc.freeze()  # the children's collections never walk (and so never copy) the server's objects
    control = os.dup(1)
    os.dup2(2, 1)
    os.write(control, b'{"ready": true}\n')  # wall time counts from here: starting is not the node's
    for line in sys.stdin.buffer:
        message = json.loads(line)
        folder = os.path.join(IO_DIR, os.path.basename(str(message["dir"])))
        pid = os.fork()
        if pid == 0:
            child(folder, message["limits"], control)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = _SIGNAL_BASE - code
        ok = clean()
        cpu_s = round(usage.ru_utime + usage.ru_stime, 3)
        answer = {"dir": message["dir"], "code": code, "clean": ok, "cpu_s": cpu_s}
        os.write(control, (json.dumps(answer) + "\n").encode())
        if not ok:
            break


if __name__ == "__main__":
    serve()
