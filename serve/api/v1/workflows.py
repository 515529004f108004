"""Workflows: validate, create, list, get (latest), update (optimistic, `If-Match`), delete, versions."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from engine.store import NotFoundError as StoreNotFound
from engine.store import Store, VersionConflictError
from nodes import Catalog
from nodes.ids import WorkflowId
from serve.api.v1.schemas import (
    AUTH_ERRORS,
    INVALID,
    MAX_INT,
    NOT_FOUND,
    Diagnostic,
    Problem,
    ValidateRequest,
    ValidateResponse,
    VersionList,
    VersionSummary,
    WorkflowCreate,
    WorkflowList,
    WorkflowSummary,
    WorkflowUpdate,
    WorkflowVersionOut,
)
from serve.api.v1.stored import UNSENDABLE, stored_json
from serve.auth import Principal, require
from serve.deps import get_catalog, get_store
from serve.errors import (
    BadRequestError,
    InvalidWorkflowError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from serve.policy import Access
from serve.policy_access import visible_workflow

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=AUTH_ERRORS)


def diagnose(document: dict[str, Any], catalog: Catalog) -> list[dict[str, Any]]:
    """The validator's diagnostics of a document, as JSON."""
    from engine.compile import validate

    return [d.to_json() for d in validate(document, catalog)]


def require_valid(document: dict[str, Any], catalog: Catalog) -> None:
    """Raise `InvalidWorkflowError` (422 with diagnostics) unless the document has no errors."""
    diagnostics = diagnose(document, catalog)
    errors = [d for d in diagnostics if d["severity"] == "error"]
    if errors:
        name = document.get("name", "?") if isinstance(document, dict) else "?"
        raise InvalidWorkflowError(
            f"workflow {name!r} has {len(errors)} error(s); the diagnostics say where — fix them and resend",
            diagnostics,
        )


def owned_workflow(
    store: Store, principal: Principal, workflow_id: WorkflowId, need: Access = Access.VIEW
) -> Any:
    """The workflow record if it exists and the principal may see it (its own, its tenant's for owners and
    admins, or shared with it; otherwise 404 too) with `need` on it (403 otherwise; `serve.policy_access`)."""
    return visible_workflow(store, principal, workflow_id, need)


def _version_out(wf: Any, version: Any) -> WorkflowVersionOut:
    return WorkflowVersionOut(
        workflow_id=version.workflow_id,
        name=wf.name,
        version=version.version,
        content_hash=version.content_hash,
        author=version.author,
        message=version.message,
        created_at=version.created_at,
        workflow=version.document,
    )


@router.post("/validate", response_model=ValidateResponse, summary="Validate a workflow")
def validate_workflow(
    body: ValidateRequest,
    catalog: Catalog = Depends(get_catalog),
    _: Principal = Depends(require("workflows:read")),
) -> ValidateResponse:
    """Diagnostics for a graph; nothing is stored."""
    diagnostics = diagnose(body.workflow, catalog)
    return ValidateResponse(
        valid=not any(d["severity"] == "error" for d in diagnostics),
        diagnostics=[Diagnostic(**d) for d in diagnostics],
    )


@router.post(
    "",
    response_model=WorkflowVersionOut,
    status_code=201,
    summary="Create a workflow",
    responses=INVALID,
)
def create_workflow(
    body: WorkflowCreate,
    request: Request,
    response: Response,
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(require("workflows:write")),
) -> WorkflowVersionOut:
    """Store a new workflow as version 1 (it must validate)."""
    require_valid(body.workflow, catalog)
    version = store.workflows.create(
        body.workflow,
        name=body.name,
        owner=principal.user_id,
        author=principal.username,
        message=body.message,
    )
    request.state.audit_target = version.workflow_id
    _announce(request, str(version.workflow_id), "workflow.saved", version.version)
    wf = store.workflows.get(version.workflow_id)
    response.headers["Location"] = f"/v1/workflows/{wf.id}"
    response.headers["ETag"] = f'"{version.version}"'
    return _version_out(wf, version)


@router.get("", response_model=WorkflowList, summary="List workflows")
def list_workflows(
    name: str | None = Query(default=None, description="Only workflows with this name."),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=MAX_INT),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:read")),
) -> WorkflowList:
    """The workflows you may see (yours, those shared with you or your tenant, your tenant's for its owners and
    admins, every one for admin keys), most recently updated first."""
    audience = None if principal.is_admin else principal.audience
    rows = store.workflows.list(name=name, limit=limit + 1, offset=offset, visible_to=audience)
    more = len(rows) > limit
    return WorkflowList(
        items=[WorkflowSummary.model_validate(r) for r in rows[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/{workflow_id}",
    response_model=WorkflowVersionOut,
    summary="Get a workflow",
    responses={**NOT_FOUND, **UNSENDABLE},
)
def get_workflow(
    workflow_id: WorkflowId,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:read")),
) -> Response:
    """The latest version of a workflow; its `ETag` is the version number (send it as `If-Match` to update)."""
    wf = owned_workflow(store, principal, workflow_id)
    version = store.workflows.latest(workflow_id)
    return _send_version(wf, version, headers={"ETag": f'"{version.version}"'})


# ASCII digits only: str.isdigit() also accepts "²" and other digits int() cannot read.
_VERSION = re.compile(r"[0-9]+")
#: What `If-Match` may hold, as documented in the OpenAPI document (a version number, quoted or weak or not).
IF_MATCH_PATTERN = r'^[ \t]*(W/)?"?[0-9]+"?[ \t]*$'


def _parse_if_match(value: str | None, wf: Any) -> int:
    """The version `If-Match` names: 428 without it, 400 unless it is a version number, 412 when it is one that
    cannot be the latest (beyond any stored version; compared as text, so 5,000 digits cost nothing)."""
    if value is None:
        raise PreconditionRequiredError(
            f"updating workflow {wf.id!r} needs `If-Match: <version>` (the ETag of GET "
            f"/v1/workflows/{wf.id}), so concurrent edits are not lost"
        )
    text = value.strip().removeprefix("W/").strip('"')
    shown = value if len(value) <= 40 else value[:40] + "..."
    if _VERSION.fullmatch(text) is None:
        raise BadRequestError(
            f'If-Match {shown!r} is not a version number; send the ETag, e.g. If-Match: "3"'
        )
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_INT)) or int(digits) > MAX_INT:
        raise PreconditionFailedError(
            f"If-Match {shown!r} is not the latest version of workflow {wf.id!r}, which is "
            f'{wf.latest_version}; GET it, reapply your change and send If-Match: "{wf.latest_version}"'
        )
    return int(digits)


@router.put(
    "/{workflow_id}",
    response_model=WorkflowVersionOut,
    summary="Save a new version",
    responses={
        **NOT_FOUND,
        **INVALID,
        412: {"model": Problem, "description": "If-Match is not the latest version."},
        428: {"model": Problem, "description": "If-Match missing."},
    },
)
def update_workflow(
    workflow_id: WorkflowId,
    body: WorkflowUpdate,
    request: Request,
    response: Response,
    if_match: str | None = Header(
        default=None,
        description='The version being replaced (its ETag, e.g. `"3"`).',
        # Documented, not enforced by the schema: the route answers 400 with its own message for other text.
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(require("workflows:write")),
) -> WorkflowVersionOut:
    """Store the document as the next version, only if `If-Match` names the current latest version."""
    wf = owned_workflow(store, principal, workflow_id, Access.EDIT)
    expected = _parse_if_match(if_match, wf)
    require_valid(body.workflow, catalog)
    try:
        version = store.workflows.save(
            workflow_id,
            body.workflow,
            expected_version=expected,
            author=principal.username,
            message=body.message,
        )
    except VersionConflictError as exc:
        raise PreconditionFailedError(str(exc)) from None
    _announce(request, str(workflow_id), "workflow.saved", version.version)
    response.headers["ETag"] = f'"{version.version}"'
    return _version_out(wf, version)


@router.delete("/{workflow_id}", status_code=204, summary="Delete a workflow", responses=NOT_FOUND)
def delete_workflow(
    workflow_id: WorkflowId,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:write")),
) -> Response:
    """Remove a workflow from listings; its versions stay readable by the runs that used them."""
    owned_workflow(store, principal, workflow_id, Access.MANAGE)
    store.workflows.delete(workflow_id)
    _announce(request, str(workflow_id), "workflow.deleted")
    return Response(status_code=204)


def _announce(request: Request, workflow_id: str, event_type: str, version: int | None = None) -> None:
    """Tell the other servers over the event bus that the workflow changed (it is stored already)."""
    from engine.bus import workflow_notice, workflow_topic
    from serve.bus import announce

    announce(
        request.app.state, workflow_topic(workflow_id), workflow_notice(workflow_id, event_type, version)
    )


@router.get(
    "/{workflow_id}/versions", response_model=VersionList, summary="Version history", responses=NOT_FOUND
)
def list_versions(
    workflow_id: WorkflowId,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:read")),
) -> VersionList:
    """Every version of a workflow, newest first."""
    owned_workflow(store, principal, workflow_id)
    return VersionList(
        workflow_id=workflow_id,
        items=[VersionSummary.model_validate(v) for v in store.workflows.history(workflow_id)],
    )


@router.get(
    "/{workflow_id}/versions/{version}",
    response_model=WorkflowVersionOut,
    summary="One version",
    responses={**NOT_FOUND, **UNSENDABLE},
)
def get_version(
    workflow_id: WorkflowId,
    version: int = Path(ge=1, le=MAX_INT),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:read")),
) -> Response:
    """One version of a workflow, with its document."""
    wf = owned_workflow(store, principal, workflow_id)
    try:
        row = store.workflows.get_version(workflow_id, version)
    except StoreNotFound:
        raise NotFoundError(f"workflow {workflow_id!r} has no version {version}; see its /versions") from None
    return _send_version(wf, row)


def _send_version(wf: Any, version: Any, headers: dict[str, str] | None = None) -> Response:
    """A stored version as the response, or a 409 naming it when its document cannot be sent as JSON."""
    return stored_json(
        _version_out(wf, version),
        what=f"workflow {wf.id!r} ({wf.name!r}) version {version.version}",
        fix=(
            f"store a corrected document as a new version (PUT /v1/workflows/{wf.id} with If-Match: "
            f'"{wf.latest_version}") or delete the workflow (DELETE /v1/workflows/{wf.id})'
        ),
        stored={"workflow": version.document},
        headers=headers,
    )
