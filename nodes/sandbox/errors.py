"""Errors of the plugin sandbox. Each names the plugin and node, and says what was exceeded or what to do."""

from __future__ import annotations

__all__ = [
    "LIMIT_ERRORS",
    "CpuTimeLimitExceeded",
    "MemoryLimitExceeded",
    "OutputLimitExceeded",
    "ProcessLimitExceeded",
    "SandboxError",
    "SandboxKilledError",
    "SandboxLimitExceeded",
    "SandboxUnavailableError",
    "SandboxedNodeError",
    "UnsafeOutputError",
    "WallTimeLimitExceeded",
]


class SandboxError(Exception):
    """Base class of every error of `nodes.sandbox`."""


class SandboxUnavailableError(SandboxError, RuntimeError):
    """An untrusted plugin's node cannot run here: no working sandbox (the message says what to install)."""


class SandboxedNodeError(SandboxError):
    """The node's own code raised inside the sandbox; `remote_type` is the name of what it raised."""

    def __init__(self, message: str, remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class SandboxKilledError(SandboxError):
    """A sandboxed call was killed from outside the sandbox (by a signal none of its limits sends: the
    machine's OOM killer, an administrator), not for something it did; running it again may work."""


class UnsafeOutputError(SandboxError, TypeError):
    """A sandboxed node returned a value of a kind that may not leave the sandbox (it could run code)."""


class SandboxLimitExceeded(SandboxError):
    """A sandboxed node went beyond one of its limits and was stopped (audited by durable runs)."""

    #: The limit's name as settings and audit entries spell it.
    limit = ""


class MemoryLimitExceeded(SandboxLimitExceeded, MemoryError):
    """The node tried to use more memory than `sandbox_memory_mb` (or its declared `memory`)."""

    limit = "memory"


class CpuTimeLimitExceeded(SandboxLimitExceeded):
    """The node used more CPU time than `sandbox_cpu_s`."""

    limit = "cpu_time"


class WallTimeLimitExceeded(SandboxLimitExceeded, TimeoutError):
    """The node ran longer than `sandbox_wall_s` (wall-clock time)."""

    limit = "wall_time"


class ProcessLimitExceeded(SandboxLimitExceeded):
    """The node tried to start more processes or threads than `sandbox_processes`."""

    limit = "processes"


class OutputLimitExceeded(SandboxLimitExceeded):
    """The node's outputs (or its scratch files) were bigger than `sandbox_output_mb`."""

    limit = "output"


#: The names of the limit errors, as `NodeError.type` records them (the durable sink audits these).
LIMIT_ERRORS = frozenset(
    cls.__name__
    for cls in (
        MemoryLimitExceeded,
        CpuTimeLimitExceeded,
        WallTimeLimitExceeded,
        ProcessLimitExceeded,
        OutputLimitExceeded,
    )
)
