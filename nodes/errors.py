"""Errors of the nodes package. Each subclasses a builtin and its message names the node, port and the fix."""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "DuplicateNodeTypeError",
    "InputTypeError",
    "NodeDefinitionError",
    "NodeInputError",
    "NodeOutputError",
    "NodeTimeoutError",
    "NodesError",
    "ObjectStoreError",
    "OutputTypeError",
    "PolicyError",
    "PortTypeError",
    "UnknownNodeTypeError",
]

#: What a value crossed: an input port, an output port or a param.
Direction = Literal["input", "output", "param"]


class NodesError(Exception):
    """Base class of every error raised by the nodes package."""


class NodeDefinitionError(NodesError, TypeError):
    """A function or class cannot become a node (raised by `@node` at decoration time)."""


class PolicyError(NodesError, ValueError):
    """A retry policy or resource request has an invalid value."""


class UnknownNodeTypeError(NodesError, KeyError):
    """A node type id is not in the catalog; the message lists close matches and the versions that exist."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and show it in quotes.
        return str(self.args[0]) if self.args else ""


class DuplicateNodeTypeError(NodesError, ValueError):
    """Two different definitions were added to one catalog under the same type id."""


class NodeInputError(NodesError, TypeError):
    """A value given to a node input port or param is missing, unknown or of the wrong type."""


class NodeOutputError(NodesError, TypeError):
    """A node returned a value that does not match its output ports."""


class PortTypeError(NodesError, TypeError):
    """A value crossing a port at run time is not of the port's type, or its implicit coercion failed.

    Raised wherever values cross ports at run time: the engine's task wrapper (on Ray and in-process, where
    it becomes the node's error with type ``PortTypeError``), map elements passed to a sub-workflow's
    ``item``, and the node test harness (`nodes.testing`, as `InputTypeError` / `OutputTypeError`). The
    attributes name where and what: ``workflow`` (empty when there is none), ``node`` (the node id),
    ``node_type``, ``port``, ``direction`` (``input``, ``output`` or ``param``), ``expected`` (the type
    wanted where it failed), ``actual`` (what was found), ``path`` (where inside the value, e.g. ``[3].name``,
    empty for the value itself), ``port_type`` (the port's declared type) and ``detail`` (e.g. which coercion
    failed).
    """

    def __init__(
        self,
        workflow: str,
        node: str,
        port: str,
        direction: Direction,
        expected: str,
        actual: str,
        path: str = "",
        *,
        node_type: str = "",
        port_type: str = "",
        detail: str = "",
    ) -> None:
        self.workflow = workflow
        self.node = node
        self.node_type = node_type
        self.port = port
        self.direction = direction
        self.expected = expected
        self.actual = actual
        self.path = path
        self.port_type = port_type
        self.detail = detail
        where = f"workflow {workflow!r}, " if workflow else ""
        where += f"node {node!r}" + (f" ({node_type})" if node_type and node_type != node else "")
        what = {"input": "input port", "output": "output port"}.get(direction, direction)
        at = f"{path}: " if path else ""
        extra = f" ({detail})" if detail else ""
        declared = f" (port type {port_type})" if port_type and port_type != expected else ""
        super().__init__(
            f"{where}, {what} {port!r}: {at}expected {expected}, got {actual}{extra}{declared}; "
            f"{_PORT_TYPE_HINTS.get(direction, _PORT_TYPE_HINTS['input'])}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross Ray task boundaries by pickle, which would otherwise call __init__ with .args only.
        keywords = {
            "node_type": self.node_type,
            "port_type": self.port_type,
            "detail": self.detail,
        }
        positional = (
            self.workflow,
            self.node,
            self.port,
            self.direction,
            self.expected,
            self.actual,
            self.path,
        )
        return (_rebuild_port_type_error, (type(self), positional, keywords))


_PORT_TYPE_HINTS = {
    "input": "fix the upstream value or the port type (or insert a conversion node)",
    "output": "make the node return a value of its declared output type, or change that type",
    "param": "set the param to a value of its type",
}


def _rebuild_port_type_error(
    cls: type[PortTypeError], positional: tuple[Any, ...], keywords: dict[str, Any]
) -> PortTypeError:
    return cls(*positional, **keywords)


class InputTypeError(PortTypeError, NodeInputError):
    """A `PortTypeError` at an input port or param, as the node test harness raises it (it is also the
    `NodeInputError` the harness raises for every bad input)."""


class OutputTypeError(PortTypeError, NodeOutputError):
    """A `PortTypeError` at an output port, as the node test harness raises it (also a `NodeOutputError`)."""


class NodeTimeoutError(NodesError, TimeoutError):
    """A node did not finish within its `timeout_s`."""


class ObjectStoreError(NodesError, OSError):
    """A storage location (`nodes.objectstore`: a directory or an s3:// URL) cannot be opened, read or written;
    the message names the setting, the URL and the fix."""
