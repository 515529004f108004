"""Errors of durable runs and recovery. Each subclasses a builtin, and its message names the run (and node or
location) involved and says what to do."""

from __future__ import annotations


class DurableError(Exception):
    """Base class of every error raised by `engine.durable`."""


class ResultNotFoundError(DurableError, KeyError):
    """A node result is not in the durable result store (never written, or deleted)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better without the quotes.
        return str(self.args[0]) if self.args else "result not found"


class NotResumableError(DurableError, ValueError):
    """A run cannot be resumed: it is finished, still owned by a live coordinator, or lacks what a resume needs."""


class ResultStoreError(DurableError, OSError):
    """Writing or reading the durable result store failed (the message names the location)."""


class UnstorableOutputError(DurableError, ValueError):
    """A workflow output of a durable run breaks the limits of the JSON the store keeps and the API sends
    (`engine.jsonlimits`): too deep, text with a NUL character or a lone surrogate, a non-finite number. The
    message names the node, its port and the workflow output, the place inside the value and what to do."""
