"""Errors of outbound webhooks; each names the field at fault and what to do."""

from __future__ import annotations


class WebhookInputError(ValueError):
    """A subscription's input is not acceptable; `field` names it (`url`, `event_types`, `workflow_id`...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
