"""Node suggestions (`engine.suggest`): which node types to add next to a workflow.

- `GET /v1/suggestions?workflow_id=...&node=...&port=...&side=output|input&q=...&limit=...`: for a stored
  workflow (its latest version, or `version`);
- `POST /v1/suggestions` with `{"workflow": {...}, "node": ..., ...}`: for a partial workflow being edited,
  which is not stored (the editor's case); `workflow` may be left out for a text query alone.

Both need `workflows:read`, like reading a workflow; a stored workflow must be one the key may see. What was
learned from history comes from the latest versions of the workflows the key may see (every workflow for
admin keys). An unknown workflow is a 404, an unknown node or port a 400 naming it (problem `field`: node or
port); a port type nothing fits is a 200 with no suggestions and a `reason`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cluster.settings import Settings
from engine.store import Store
from nodes import Catalog
from nodes.ids import WorkflowId
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND, Problem, RequestModel, WorkflowDocument
from serve.api.v1.workflows import owned_workflow
from serve.auth import Principal, require
from serve.deps import get_catalog, get_settings, get_store
from serve.errors import BadRequestError, NotFoundError

router = APIRouter(prefix="/suggestions", tags=["suggestions"], responses=AUTH_ERRORS)

BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "An unknown node or port, or nothing to suggest from; `field` says which.",
    }
}
Side = Literal["output", "input"]


class FitOut(BaseModel):
    """How the selected port's type fits the suggested node's port (`engine.suggest.compat`)."""

    kind: str = Field(
        description="exact, subtype, generic, element (one element of a list binding), implicit (coercion), any (a port of type Any), explicit."
    )
    score: float
    coercion: dict[str, Any] | None = Field(default=None, description="The coercion, when one is needed.")
    via: list[str] = Field(default_factory=list, description="Conversion nodes an explicit coercion needs.")


class SuggestionOut(BaseModel):
    """One suggested node type."""

    type: str = Field(description="The node type id (plugin/name@major).")
    port: str | None = Field(
        description="Its port to connect to the selected one; null for a text query alone."
    )
    score: float
    fit: FitOut | None
    scores: dict[str, float] = Field(
        description="The parts of the score: type, history, context, text (each 0 to 1)."
    )
    description: str


class AnchorOut(BaseModel):
    """The selected port and its type in the workflow."""

    node: str
    node_type: str
    port: str
    side: Side
    type: str


class SuggestionsOut(BaseModel):
    """Suggested node types, best first; `reason` says why there are none."""

    anchor: AnchorOut | None
    suggestions: list[SuggestionOut]
    reason: str | None = None
    notes: list[str]


class SuggestRequest(RequestModel):
    """A partial workflow (not stored) and the port to suggest from, or a text query."""

    workflow: WorkflowDocument | None = Field(default=None, description="A `rayweave.workflow/1` document.")
    node: str | None = Field(default=None, max_length=200)
    port: str | None = Field(default=None, max_length=200)
    side: Side = "output"
    q: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=10, ge=1, le=100)


def get_suggestions(request: Request, settings: Settings = Depends(get_settings)) -> Any:
    """The app's `SuggestionService` (made on first use: it keeps the text index and read edges)."""
    from engine.suggest.service import SuggestionService

    service = getattr(request.app.state, "suggestions", None)
    if service is None:
        service = SuggestionService(settings.suggest_text)
        request.app.state.suggestions = service
    return service


def _answer(
    service: Any,
    store: Store,
    catalog: Catalog,
    principal: Principal,
    document: dict[str, Any] | None,
    node: str | None,
    port: str | None,
    side: Side,
    q: str | None,
    limit: int,
) -> SuggestionsOut:
    from engine.suggest import SuggestError

    try:
        result = service.suggest(
            store,
            catalog,
            document=document,
            node=node,
            port=port,
            side=side,
            query=q,
            limit=limit,
            visible_to=None if principal.is_admin else principal.audience,
        )
    except SuggestError as exc:
        raise BadRequestError(str(exc), extra={"field": exc.field}) from None
    return SuggestionsOut.model_validate(result.to_json())


@router.get(
    "",
    response_model=SuggestionsOut,
    summary="Suggest the next nodes of a stored workflow",
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def suggestions(
    workflow_id: WorkflowId | None = Query(default=None, max_length=64, description="A stored workflow."),
    version: int | None = Query(default=None, ge=1, le=2**31 - 1, description="Its version; default latest."),
    node: str | None = Query(default=None, max_length=200, description="The selected node's id."),
    port: str | None = Query(
        default=None, max_length=200, description="Its port; may be left out when it has one on that side."
    ),
    side: Side = Query(
        default="output", description="output: what may read the port; input: what may feed it."
    ),
    q: str | None = Query(
        default=None, max_length=500, description="Text to match against node documentation."
    ),
    limit: int = Query(default=10, ge=1, le=100),
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    service: Any = Depends(get_suggestions),
    principal: Principal = Depends(require("workflows:read")),
) -> SuggestionsOut:
    """Node types to add next: those with a port that fits the selected port (type fit, implicit coercions and
    conversion nodes), ranked by what follows that port in the workflows you may see and by the text query."""
    from engine.suggest.service import stored_document

    document = None
    if workflow_id is not None:
        wf = owned_workflow(store, principal, workflow_id)
        from engine.suggest import SuggestError

        try:
            document = stored_document(store, wf.id, version)
        except SuggestError as exc:
            raise NotFoundError(str(exc)) from None
    elif node is not None:
        raise BadRequestError(
            "node needs workflow_id (or POST the partial workflow)", extra={"field": "workflow_id"}
        )
    return _answer(service, store, catalog, principal, document, node, port, side, q, limit)


@router.post(
    "",
    response_model=SuggestionsOut,
    summary="Suggest the next nodes of a partial workflow",
    responses={**BAD_REQUEST, **INVALID},
)
def suggestions_for_document(
    body: SuggestRequest,
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    service: Any = Depends(get_suggestions),
    principal: Principal = Depends(require("workflows:read")),
) -> SuggestionsOut:
    """The same as `GET /v1/suggestions` for a workflow being edited (nothing is stored)."""
    if body.node is not None and body.workflow is None:
        raise BadRequestError("node needs the workflow it belongs to", extra={"field": "workflow"})
    return _answer(
        service, store, catalog, principal, body.workflow, body.node, body.port, body.side, body.q, body.limit
    )
