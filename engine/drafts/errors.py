"""Errors of drafting a workflow from a description; each subclasses a builtin and says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.compile.diagnostics import Diagnostic


class DraftError(EngineError):
    """Base of the drafting errors."""


class DraftConfigError(DraftError, ValueError):
    """No endpoint or model is configured, or the API key reference cannot be resolved; names the setting."""


class DraftEndpointError(DraftError, ConnectionError):
    """The chat completions endpoint could not be reached or did not answer as an OpenAI-compatible API."""


class DraftNotValidError(DraftError, ValueError):
    """The model's last draft still has errors after every repair round.

    `document` is that last draft (None when the answer held no JSON object), `diagnostics` what is still wrong
    and `rounds` the repair rounds spent.
    """

    def __init__(
        self, message: str, *, document: dict[str, Any] | None, diagnostics: Sequence[Diagnostic], rounds: int
    ) -> None:
        super().__init__(message)
        self.document = document
        self.diagnostics = tuple(diagnostics)
        self.rounds = rounds
