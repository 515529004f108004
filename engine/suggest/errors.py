"""Errors of the suggestion engine: each names the workflow, node, port or field at fault and what to do."""

from __future__ import annotations


class SuggestError(ValueError):
    """A suggestion request that cannot be answered as asked; `field` names the part of the request at fault
    (`node`, `port`, `side`, `workflow`, `q`)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownNodeError(SuggestError):
    """The workflow has no node with the id given."""


class UnknownPortError(SuggestError):
    """The node has no port with the name given on the side given."""
