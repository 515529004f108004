"""Request bodies of the collaboration routes (responses reuse `serve.api.v1.schemas`)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from serve.api.v1.schemas import RequestModel


class CollabSave(RequestModel):
    """Save the shared document of a workflow as its next version."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="", max_length=2000, description="The version's message.")
