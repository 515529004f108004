"""Request and response bodies of `POST /v1/workflows/draft` (issue 20), on the API's public `RequestModel`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serve.api.v1.schemas import Diagnostic, RequestModel


class DraftRequest(RequestModel):
    """A description of a workflow in words; `save` stores a valid draft as a new workflow (version 1)."""

    description: str = Field(
        min_length=1, max_length=8000, description="What the workflow should do, in words."
    )
    save: bool = Field(default=False, description="Store the draft as a new workflow when it is valid.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The workflow's name (default: the name the model chose).",
    )
    rounds: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Repair rounds (default: the server's RAYWEAVE_DRAFT_REPAIR_ROUNDS).",
    )


class DraftOut(BaseModel):
    """A draft without errors, the diagnostics that remain (warnings, notes), the repair rounds it took and,
    when saved, the new workflow's id and version."""

    workflow: dict[str, Any]
    diagnostics: list[Diagnostic]
    repair_rounds: int
    workflow_id: str | None = Field(default=None, description="The saved workflow (null: not saved).")
    version: int | None = None
