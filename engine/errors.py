"""Errors raised by the engine; each subclasses a builtin so callers can catch it the usual way.

Every message names the workflow and, where it applies, the node, port or field, and says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nodes import errors as _nodes_errors
from nodes.ids import RunId
from nodes.states import NodeStatus

if TYPE_CHECKING:
    from engine.compile.diagnostics import Diagnostic


#: How many diagnostics a WorkflowValidationError message lists (all are in `.diagnostics`).
_SHOWN = 20


class EngineError(Exception):
    """Base class of every engine error (mixed with a builtin in each concrete class)."""


class WorkflowLoadError(EngineError, ValueError):
    """A workflow file or text could not be read as a workflow document.

    ``line`` and ``column`` (1-based) locate the problem in the text when known; ``path`` is the dotted field
    path (``nodes.mean.retry.backoff``) for a document of the wrong shape, or None for a syntax error.
    ``source`` names the file (or ``<text>``).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<text>",
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
        problems: Sequence[WorkflowLoadError] = (),
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.path = path
        self.problems: tuple[WorkflowLoadError, ...] = tuple(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if self.problems:
            return "\n".join(p._render() for p in self.problems)
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class WorkflowBuildError(EngineError, ValueError):
    """The Python workflow builder was used wrongly (e.g. a duplicate node id or a port of another workflow)."""


class WorkflowValidationError(EngineError, ValueError):
    """A workflow did not compile; ``diagnostics`` lists every problem (node, port, code, hint)."""

    def __init__(self, workflow: str, diagnostics: Sequence[Diagnostic]) -> None:
        self.workflow = workflow
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        lines = [f"workflow {workflow!r} has {len(errors)} error(s):"]
        lines += [f"  {d.render()}" for d in errors[:_SHOWN]]
        if len(errors) > _SHOWN:
            lines.append(f"  ... and {len(errors) - _SHOWN} more (see .diagnostics)")
        super().__init__("\n".join(lines))


class WorkflowInputError(EngineError, ValueError):
    """A workflow input value is missing (no default) or not of the declared type."""


# --- Execution errors (engine/execution). ---


#: A value crossing a port at run time is not of the port's type, or its implicit coercion failed (raised in
#: the task wrapper and for map elements; the node's error then has type ``PortTypeError``). One class for the
#: engine and the node test harness, defined in `nodes.errors` because nodes sit below the engine.
PortTypeError = _nodes_errors.PortTypeError


class JsonLimitError(EngineError, ValueError):
    """A JSON value breaks a limit of `engine.jsonlimits` (nesting depth, text that cannot be stored, a
    non-finite number); `path` locates the offending part (`inputs.rows[3]`), `problem` says what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class NodeTimeoutError(EngineError, TimeoutError):
    """An attempt of a node ran longer than its `timeout_s`; the task was cancelled."""

    def __init__(self, workflow: str, node: str, timeout_s: float, attempt: int) -> None:
        self.workflow = workflow
        self.node = node
        self.timeout_s = timeout_s
        self.attempt = attempt
        super().__init__(
            f"workflow {workflow!r}, node {node!r}: attempt {attempt} exceeded its timeout of {timeout_s:g} s and "
            f"was cancelled; raise the node's timeout_s or make it faster"
        )


class CircuitOpenError(EngineError, RuntimeError):
    """The circuit breaker of a node type or external resource is open: calls fail fast without running."""

    def __init__(self, breaker: str, node: str, retry_after_s: float, failures: int) -> None:
        self.breaker = breaker
        self.node = node
        self.retry_after_s = retry_after_s
        self.failures = failures
        super().__init__(
            f"node {node!r}: circuit breaker {breaker!r} is open after {failures} recent failures; the node was not "
            f"run. A probe is allowed in {retry_after_s:.1f} s; fix the resource or wait and rerun"
        )


class UpstreamFailedError(EngineError, RuntimeError):
    """A node did not run because a node it reads from failed (or was cancelled)."""

    def __init__(self, node: str, upstream: str) -> None:
        self.node = node
        self.upstream = upstream
        super().__init__(
            f"node {node!r} did not run because upstream node {upstream!r} failed; see the error of {upstream!r}"
        )


class RunCancelledError(EngineError, RuntimeError):
    """A node was stopped because its run was cancelled (by `RunHandle.cancel()` or fail-fast)."""

    def __init__(self, run_id: RunId, node: str, reason: str = NodeStatus.CANCELLED) -> None:
        self.run_id = run_id
        self.node = node
        super().__init__(
            f"run {run_id!r}: node {node!r} was stopped ({reason}); rerun the workflow to finish it"
        )


class ExportError(EngineError, ValueError):
    """A workflow cannot be exported in the asked form (`engine.formats.ray_script`): one line per node and what
    is not translated."""

    def __init__(self, workflow: str, problems: Sequence[str]) -> None:
        self.workflow = workflow
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"workflow {workflow!r} cannot be exported as a plain Ray script:\n{listed}")
