"""Request and response bodies of `/v1/webhooks` (issue 19), on the API's public `RequestModel` base."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from engine.webhooks.service import EVENT_TYPES
from engine.webhooks.targets import MAX_URL_LENGTH
from serve.api.v1.schemas import RequestModel

#: An event type a webhook may subscribe to (checked by the service: a 422 names an unknown one).
WebhookEventType = Annotated[
    str, WithJsonSchema({"type": "string", "enum": list(EVENT_TYPES), "title": "WebhookEventType"})
]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where deliveries are POSTed: an http(s) URL of a public address (internal addresses only "
        "when the operator allows them in RAYWEAVE_WEBHOOK_ALLOW).",
    ),
]
EventTypes = Annotated[
    list[WebhookEventType],
    Field(min_length=1, max_length=len(EVENT_TYPES) * 2, description="The event types to deliver."),
]


class WebhookCreate(RequestModel):
    """A new webhook: where to send which events (of the runs you may see), and of which workflow."""

    url: Url
    event_types: EventTypes
    workflow_id: str | None = Field(
        default=None, max_length=64, description="Only runs of this workflow (one you may see); default: all."
    )
    description: str = Field(default="", max_length=1000)
    enabled: bool = True


class WebhookUpdate(RequestModel):
    """Changes to a webhook; fields left out stay as they are (`workflow_id: null` removes the filter)."""

    url: Url | None = None
    event_types: EventTypes | None = None
    workflow_id: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WebhookOut(_Response):
    """A webhook as shown (never its signing secret)."""

    id: str
    owner: str = Field(description="The user whose view of runs the webhook has.")
    tenant_id: str
    url: str
    event_types: list[str]
    workflow_id: str | None
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    created_by: str


class WebhookCreated(WebhookOut):
    """A new webhook with its signing secret: shown this once, never again; keep it where the receiver is."""

    secret: str = Field(description="The signing secret (`whsec_...`, Standard Webhooks); shown only now.")


class WebhookList(_Response):
    """Webhooks, oldest first."""

    items: list[WebhookOut]


class DeliveryOut(_Response):
    """One delivery of an event to a webhook, and how its attempts went (`dead`: the dead letter)."""

    id: str = Field(description="The delivery's id, sent as the `webhook-id` header on every attempt.")
    webhook_id: str
    event_type: str
    event_id: str = Field(description="The CloudEvent's `id` (`{run_id}:{seq}` for run events).")
    run_id: str | None
    seq: int | None
    status: str = Field(description="`scheduled`, `delivered` or `dead`.")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(_Response):
    """Deliveries of a webhook, newest first."""

    items: list[DeliveryOut]
