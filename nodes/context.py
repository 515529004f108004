"""The run context of a node: who is running (run id, node id, attempt) and a channel back to the engine.

Inside a node, `context.current()` returns the `NodeContext` the engine installed with `context.use(ctx)`;
outside a run it returns a context whose events go nowhere, so node code never needs to check.

Everything a node reports goes through one callback the engine provides, `emit(event_type, payload)`:
log lines (`node.log`), progress (`node.progress`) and partial outputs of generator nodes (`node.output`).
The engine turns those calls into run events; `nodes.testing` records them.

The context also carries the run's `AccessPolicy` (`ctx.policy`): the data roots and network addresses the
built-in file and HTTP nodes may reach. Outside a run it is `AccessPolicy.UNRESTRICTED`. It names the workflow
(`ctx.workflow`, `ctx.workflow_version`: the stored workflow's version, empty for a document run) and holds the
run's `config`: a small mapping of installation settings that nodes need and must not read from the worker's
environment (e.g. `mlflow.tracking_uri`; see `engine.execution.nodeconfig`).
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from nodes.access import AccessPolicy
from nodes.states import EventType

__all__ = ["EmitFn", "NodeContext", "NodeLogger", "current", "use"]

EmitFn = Callable[[str, Mapping[str, Any]], None]
"""The engine's callback: `emit(event_type, payload)`; payloads are JSON-friendly except `node.output`."""

# A ContextVar has to live at module level to work at all; it holds no data of its own (each thread and
# asyncio task sees its own value), so it is not shared mutable state in the sense of the house rules.
_CURRENT: contextvars.ContextVar[NodeContext | None] = contextvars.ContextVar(
    "rayweave_node_context", default=None
)


def _drop(event_type: str, payload: Mapping[str, Any]) -> None:
    del event_type, payload


class NodeLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for node code whose records become `node.log` events.

    Records at or above `event_level` (INFO by default) are sent to the context's `emit` whatever the Python
    logging configuration says; they are also passed to the ordinary logger `rayweave.node` when it is
    enabled for that level, so worker logs keep them too.
    """

    def __init__(self, ctx: NodeContext, event_level: int = logging.INFO) -> None:
        super().__init__(logging.getLogger("rayweave.node"), {"run_id": ctx.run_id, "node_id": ctx.node_id})
        self._ctx = ctx
        self.event_level = event_level

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Attach the run and node ids to the forwarded record (as `extra`)."""
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Emit a `node.log` event (level, message) and forward the record to `rayweave.node`."""
        if level >= self.event_level:
            try:
                message = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                message = f"{msg} {args!r}"
            self._ctx.emit(
                EventType.NODE_LOG,
                {"level": logging.getLevelName(level), "message": message, "attempt": self._ctx.attempt},
            )
        if self.logger.isEnabledFor(level):
            msg, processed = self.process(msg, kwargs)
            self.logger.log(level, msg, *args, **processed)


class NodeContext:
    """What a running node can know and report: ids, attempt number, logger, progress and partial outputs.

    The engine builds one per attempt with its `emit` callback and the run's `policy`, and installs it with
    `use(ctx)`. `policy` says what built-in file and network nodes may reach (`nodes.access`); without one
    (a node called outside a run) nothing is restricted. `workflow`, `workflow_version` and `config` come
    from the run's plan and settings (empty outside a run). `node_id` is the node's key in the run's events
    (e.g. `each[3].train` inside a map).
    """

    __slots__ = (
        "_logger",
        "_outputs",
        "attempt",
        "config",
        "emit",
        "node_id",
        "policy",
        "run_id",
        "workflow",
        "workflow_version",
    )

    def __init__(
        self,
        run_id: str = "",
        node_id: str = "",
        attempt: int = 1,
        emit: EmitFn | None = None,
        policy: AccessPolicy | None = None,
        *,
        workflow: str = "",
        workflow_version: str = "",
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.node_id = node_id
        self.attempt = attempt
        self.emit: EmitFn = emit if emit is not None else _drop
        self.policy: AccessPolicy = policy if policy is not None else AccessPolicy.UNRESTRICTED
        #: The workflow's name and, for a stored workflow, its version ("" when unknown).
        self.workflow = workflow
        self.workflow_version = workflow_version
        #: Installation settings for nodes (`engine.execution.nodeconfig`), e.g. `mlflow.tracking_uri`.
        self.config: Mapping[str, str] = dict(config or {})
        self._logger: NodeLogger | None = None
        self._outputs = 0

    def __repr__(self) -> str:
        return f"NodeContext(run_id={self.run_id!r}, node_id={self.node_id!r}, attempt={self.attempt})"

    @property
    def logger(self) -> NodeLogger:
        """A `logging.LoggerAdapter`; its INFO+ lines become `node.log` events of this node."""
        # Built on first use: most nodes never log, and a context is created for every attempt.
        if self._logger is None:
            self._logger = NodeLogger(self)
        return self._logger

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress between 0.0 and 1.0 (a `node.progress` event), e.g. `progress(0.5, "half way")`."""
        value = float(fraction)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(
                f"progress fraction must be between 0.0 and 1.0, got {fraction!r} (node {self.node_id or '?'})"
            )
        self.emit(
            EventType.NODE_PROGRESS, {"fraction": value, "message": str(message), "attempt": self.attempt}
        )

    def emit_output(self, value: Any) -> None:
        """Publish a partial result (a `node.output` event); generator nodes do this for every `yield`."""
        index = self._outputs
        self._outputs += 1
        self.emit(EventType.NODE_OUTPUT, {"index": index, "value": value, "attempt": self.attempt})


def current() -> NodeContext:
    """The context of the node running in this thread/task, or a fresh no-op context outside a run."""
    ctx = _CURRENT.get()
    return ctx if ctx is not None else NodeContext()


def use(ctx: NodeContext) -> _Installed:
    """Install `ctx` as the current context for the duration of the `with` block (restored afterwards)."""
    return _Installed(ctx)


class _Installed:
    """The `with` block of `use` (a class rather than a generator: it runs once per node run)."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def __enter__(self) -> NodeContext:
        self._token = _CURRENT.set(self._ctx)
        return self._ctx

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self._token)
