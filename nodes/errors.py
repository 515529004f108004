"""Errors of the nodes package. Each subclasses a builtin and its message names the node, port and the fix."""

from __future__ import annotations

__all__ = [
    "DuplicateNodeTypeError",
    "NodeDefinitionError",
    "NodeInputError",
    "NodeOutputError",
    "NodeTimeoutError",
    "NodesError",
    "PolicyError",
    "UnknownNodeTypeError",
]


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


class NodeTimeoutError(NodesError, TimeoutError):
    """A node did not finish within its `timeout_s`."""
