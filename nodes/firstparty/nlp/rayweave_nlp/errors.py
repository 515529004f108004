"""Errors of the NLP nodes; each subclasses a builtin exception and names the node, port or param at fault."""

from __future__ import annotations


class NlpNodeError(Exception):
    """Base class of every error raised by a node of the `nlp` plugin."""


class NlpInputError(NlpNodeError, ValueError):
    """An input is well typed but cannot be used (an empty corpus, a null or non-text cell, wrong dimensions)."""


class NlpParamError(NlpNodeError, ValueError):
    """A param holds a value the node does not support (`k` < 1, an unknown `mode`, a missing endpoint)."""


class MissingColumnError(NlpNodeError, KeyError):
    """A column named by a param is not in the input table."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; keep the readable message as is.
        return str(self.args[0]) if self.args else ""


class LlmEndpointError(NlpNodeError, ConnectionError):
    """`nlp/generate@1`: the endpoint was unreachable, timed out, answered an error status or bad JSON."""
