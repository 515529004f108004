"""Errors raised by the built-in nodes (plugin ``builtin``).

Each error subclasses a builtin exception so callers can catch it generically, and each message names the
node, the port or param at fault, and what to do about it.
"""

from __future__ import annotations


class BuiltinNodeError(Exception):
    """Base class of every error raised by a built-in node."""


class InputValueError(BuiltinNodeError, ValueError):
    """An input value is well typed but cannot be processed (e.g. ``"abc"`` given to ``parse_number``)."""


class ParamValueError(BuiltinNodeError, ValueError):
    """A param holds a value the node does not support (e.g. an unknown ``op`` of ``reduce``)."""


class MissingKeyError(BuiltinNodeError, KeyError):
    """A key, index or column asked for by a param does not exist in the input."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; keep the readable message as is.
        return str(self.args[0]) if self.args else ""


class IntentionalFailure(BuiltinNodeError, RuntimeError):
    """Raised on purpose by ``builtin/fail@1`` so tests can exercise failure handling."""


class ControlNodeCalledError(BuiltinNodeError, RuntimeError):
    """A control node that the engine expands itself (``map``) was called as a plain function."""


class HttpRequestError(BuiltinNodeError, ConnectionError):
    """``builtin/http_request@1`` failed: the server was unreachable, timed out or answered an error status."""


class DataFileError(BuiltinNodeError, OSError):
    """A data file could not be read or written (missing, unreadable, or not in the expected format)."""


class SqlQueryError(BuiltinNodeError, ValueError):
    """A DuckDB query of ``sql`` or ``filter`` failed to parse, bind or run."""


class AccessDeniedError(BuiltinNodeError, PermissionError):
    """A built-in node was asked for a path outside the run's data roots, or for an internal network address
    its policy does not allow (see `nodes.access`)."""
