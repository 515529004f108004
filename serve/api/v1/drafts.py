"""`POST /v1/workflows/draft`: a draft workflow from a description in words (`engine.drafts`).

The server asks its configured OpenAI-compatible model (RAYWEAVE_DRAFT_BASE_URL, RAYWEAVE_DRAFT_MODEL,
RAYWEAVE_DRAFT_API_KEY) with the node catalog of this request, checks the answer with the compiler and sends the
diagnostics back for repair rounds. Nothing is stored unless `save` is true. Scope `workflows:write`: drafting
spends the installation's model budget. Errors: 503 when no model is configured, 502 when the model endpoint
fails, 422 (with the diagnostics and the last `draft`) when the draft stays invalid.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from cluster.settings import Settings
from engine.store import Store
from nodes import Catalog
from serve.api.v1.draft_schemas import DraftOut, DraftRequest
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, Diagnostic, Problem
from serve.auth import Principal, require
from serve.deps import get_catalog, get_settings, get_store
from serve.errors import BadGatewayError, BadRequestError, InvalidWorkflowError, UnavailableError

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=AUTH_ERRORS)

UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"model": Problem, "description": "The model endpoint failed or did not answer as an OpenAI API."},
    503: {"model": Problem, "description": "No model endpoint is configured (the detail names the setting)."},
}


@router.post(
    "/draft",
    response_model=DraftOut,
    summary="Draft a workflow from a description",
    responses={
        **INVALID,
        **UPSTREAM,
        201: {
            "model": DraftOut,
            "description": "With `save`: the draft, stored as a new workflow (`Location`).",
        },
    },
)
def draft_workflow(
    body: DraftRequest,
    request: Request,
    response: Response,
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("workflows:write")),
) -> DraftOut:
    """Ask the model for a workflow doing what `description` says, validated and repaired against the compiler's
    diagnostics; with `save`, store it as a new workflow (201, `Location`)."""
    from engine.drafts import (
        DraftConfigError,
        DraftEndpointError,
        DraftNotValidError,
        complete,
        draft_workflow,
        endpoint_from,
    )

    try:
        endpoint = endpoint_from(settings, store)
    except DraftConfigError as exc:
        raise UnavailableError(str(exc)) from None
    rounds = settings.draft_repair_rounds if body.rounds is None else body.rounds
    try:
        draft = draft_workflow(
            body.description, catalog, lambda messages: complete(endpoint, messages), rounds=rounds
        )
    except DraftEndpointError as exc:
        raise BadGatewayError(str(exc)) from None
    except DraftNotValidError as exc:
        error = InvalidWorkflowError(str(exc), [d.to_json() for d in exc.diagnostics])
        error.extra["draft"] = exc.document
        raise error from None
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    document = draft.document
    if body.name is not None:
        document = {**document, "name": body.name}
    out = DraftOut(
        workflow=document,
        diagnostics=[Diagnostic.model_validate(d.to_json()) for d in draft.diagnostics],
        repair_rounds=draft.rounds,
    )
    if body.save:
        from serve.api.v1.workflows import require_valid

        require_valid(document, catalog)  # a renamed draft is checked again
        version = store.workflows.create(
            document,
            name=body.name,
            owner=principal.user_id,
            author=principal.username,
            message="drafted from a description",
        )
        request.state.audit_target = version.workflow_id
        response.status_code = 201
        response.headers["Location"] = f"/v1/workflows/{version.workflow_id}"
        out.workflow_id, out.version = version.workflow_id, version.version
    return out
