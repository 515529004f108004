"""What runs inside the jail: one node call, from a request file to an output file.

Executed as a script by the worker's own Python (`python -I -S runner.py CONFIG`), so it starts with the
standard library only: it applies the limits, gives up root (when the worker runs as root) before reading
anything the plugin wrote, puts the bound code on `sys.path`, then reads the request — the node's definition,
inputs and params, pickled by the worker — from `/io/request.pkl`, runs the node and writes
`("ok", outputs, events)` or `("error", kind, type, message, traceback, events)` to `/io/output.pkl` with the
allowlisted pickle of `nodes.sandbox.wire`. `kind` names the limit a failure comes from (`memory`, `processes`,
`output`) or is empty. Only the process that started the call writes: a process the node forked that reaches
the end of this script leaves silently.

CONFIG is JSON: `path` (entries put first on `sys.path`), `limits` (`memory_bytes`, `cpu_s`, `processes`,
`output_bytes`), `uid` (the unprivileged user to become when started as root, or null), `run` (`run_id`,
`node_id`, `attempt`, for the node's context).
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import resource
import sys
import traceback
from typing import Any

IO_DIR = "/io"
REQUEST = f"{IO_DIR}/request.pkl"
OUTPUT = f"{IO_DIR}/output.pkl"
#: Exit statuses of the runner itself: it failed, ran out of memory, or its output was too big.
EXIT_FAILED, EXIT_MEMORY, EXIT_OUTPUT = 70, 71, 72
#: The most events (log lines, progress) a sandboxed call reports.
MAX_EVENTS = 1000


def apply_limits(limits: dict[str, Any]) -> None:
    """Address space, CPU seconds, processes (threads count too), file size and no core dumps."""
    cpu = max(1, math.ceil(float(limits["cpu_s"])))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["processes"]), int(limits["processes"])))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["output_bytes"]), int(limits["output_bytes"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_root(uid: int | None) -> None:
    """Become `uid` (group too, no supplementary groups) when running as root; capabilities go with it."""
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


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


def call(request: bytes, run: dict[str, Any]) -> Any:
    """Run the node of `request` and return what the output file holds."""
    from nodes import context
    from nodes.access import AccessPolicy

    events: list[tuple[str, Any]] = []

    def emit(event_type: str, payload: Any) -> None:
        if len(events) < MAX_EVENTS:
            events.append((str(event_type), dict(payload)))

    try:
        definition, inputs, params = pickle.loads(request)
        del request
        ctx = context.NodeContext(
            run.get("run_id", ""), run.get("node_id", ""), int(run.get("attempt", 1)), emit, AccessPolicy()
        )
        with context.use(ctx):
            target = definition.resolve()  # the plugin's own definition: calling it here runs it unjailed
            instance = target.new_instance() if target.spec.kind == "class" else None
            outputs = target.invoke(inputs, params, instance=instance)
        return ("ok", outputs, events)
    except BaseException as exc:  # everything the node raised goes back as data
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return ("error", limit_kind(exc), type(exc).__name__, _text(exc), text[-20000:], events)


def write_output(result: Any) -> None:
    """Write `result` with the allowlisted pickle (a value that cannot be written becomes an error)."""
    from nodes.sandbox.wire import dumps_output

    try:
        data = dumps_output(result)
    except BaseException as exc:
        kind = limit_kind(exc)
        message = f"the node's outputs could not be written: {type(exc).__name__}: {_text(exc)}"
        data = pickle.dumps(("error", kind, type(exc).__name__, message, "", []))
    try:
        with open(OUTPUT, "wb") as out:
            out.write(data)
    except OSError as exc:
        if exc.errno in (errno.EFBIG, errno.ENOSPC):
            os._exit(EXIT_OUTPUT)
        raise


def main() -> None:
    """Run one call as CONFIG (argv[1]) says."""
    config = json.loads(sys.argv[1])
    main_pid = os.getpid()
    with open(REQUEST, "rb") as source:  # read before giving up root: the file is the worker's
        request = source.read()
    apply_limits(config["limits"])
    drop_root(config.get("uid"))
    sys.path[:0] = list(config["path"])
    resource.setrlimit(
        resource.RLIMIT_AS, (int(config["limits"]["memory_bytes"]), int(config["limits"]["memory_bytes"]))
    )
    try:
        result = call(request, config.get("run", {}))
        if os.getpid() == main_pid:
            write_output(result)
    except BaseException as exc:
        if os.getpid() == main_pid:  # e.g. out of memory while writing the error itself
            os.write(2, f"sandbox runner failed: {type(exc).__name__}: {_text(exc)}\n".encode())
            os._exit(EXIT_MEMORY if limit_kind(exc) == "memory" else EXIT_FAILED)
    os._exit(0)


if __name__ == "__main__":
    main()
