"""Sharing a workflow with users of its tenant, or with the whole tenant, at a role: `viewer` (read it and its
runs), `runner` (also start runs) or `editor` (also save versions, cancel its runs). What a share allows is
further bounded by the user's own role (a viewer shared a workflow as editor still cannot write).

`GET /v1/workflows/{id}/shares` needs view access to the workflow; `PUT` (replace every share) needs to manage
it: its owner, an owner or admin of its tenant, or an admin key. Shares never cross tenants.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.store import NotFoundError as StoreNotFound
from engine.store import Store
from engine.store.shares import TENANT, USER, Share
from nodes.ids import WorkflowId
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND, RequestModel
from serve.api.v1.workflows import owned_workflow
from serve.auth import Principal, require
from serve.deps import get_store
from serve.errors import BadRequestError
from serve.policy import Access

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=AUTH_ERRORS)

ShareRole = Literal["viewer", "runner", "editor"]


class ShareIn(RequestModel):
    """One share: with a user of the workflow's tenant (`user`: a username) or with the whole tenant
    (`tenant: true`), at `role`."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(default=None, min_length=1, max_length=200)
    tenant: bool = False
    role: ShareRole

    @model_validator(mode="after")
    def _one_subject(self) -> ShareIn:
        if (self.user is None) == (not self.tenant):
            raise ValueError("give exactly one of `user` (a username) or `tenant: true`")
        return self


class SharesUpdate(RequestModel):
    """Every share of the workflow (replaces the ones it has; `[]` stops sharing it)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ShareIn] = Field(max_length=1000)


class ShareOut(BaseModel):
    """One share: with a user (`user`, `user_id`) or with the whole tenant (`tenant`), at `role`."""

    user: str | None = None
    user_id: str | None = None
    tenant: str | None = None
    role: str


class ShareList(BaseModel):
    """The shares of a workflow."""

    workflow_id: str
    items: list[ShareOut]


def _out(store: Store, workflow_id: str, shares: list[Share]) -> ShareList:
    names = {}
    for share in shares:
        if share.subject_type == USER:
            try:
                names[share.subject_id] = store.users.get(share.subject_id).username
            except StoreNotFound:
                names[share.subject_id] = share.subject_id
    return ShareList(
        workflow_id=workflow_id,
        items=[
            ShareOut(user=names[s.subject_id], user_id=s.subject_id, role=s.role)
            if s.subject_type == USER
            else ShareOut(tenant=s.subject_id, role=s.role)
            for s in shares
        ],
    )


@router.get(
    "/{workflow_id}/shares",
    response_model=ShareList,
    summary="Who a workflow is shared with",
    responses=NOT_FOUND,
)
def get_shares(
    workflow_id: WorkflowId,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:read")),
) -> ShareList:
    """The users and tenant the workflow is shared with, and at which role."""
    owned_workflow(store, principal, workflow_id)
    return _out(store, workflow_id, store.shares.list(workflow_id))


@router.put(
    "/{workflow_id}/shares",
    response_model=ShareList,
    summary="Share a workflow",
    responses={**NOT_FOUND, **INVALID},
)
def put_shares(
    workflow_id: WorkflowId,
    body: SharesUpdate,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("workflows:write")),
) -> ShareList:
    """Replace the workflow's shares: with users of its tenant (by username) and/or the whole tenant, each at
    `viewer`, `runner` or `editor`. Only its owner, its tenant's owners and admins, and admin keys may."""
    wf = owned_workflow(store, principal, workflow_id, Access.MANAGE)
    try:
        tenant_id = store.users.get(wf.owner).tenant_id
    except StoreNotFound:
        raise BadRequestError(
            f"workflow {workflow_id!r} has no owner any more; it cannot be shared"
        ) from None
    wanted: dict[tuple[str, str], Share] = {}
    for item in body.items:
        if item.tenant:
            wanted[(TENANT, tenant_id)] = Share(workflow_id, TENANT, tenant_id, item.role)
            continue
        assert item.user is not None  # the model checks it
        try:
            user = store.users.get_by_username(item.user)
        except StoreNotFound:
            user = None
        if user is None or user.tenant_id != tenant_id:
            raise BadRequestError(
                f"items: no user {item.user!r} in tenant {tenant_id!r}; a workflow is shared only within its "
                "tenant (GET /v1/users lists its users)"
            )
        wanted[(USER, user.id)] = Share(workflow_id, USER, user.id, item.role)
    shares = store.shares.replace(workflow_id, wanted.values(), actor=principal.actor)
    request.state.audit_target = workflow_id
    store.audit.append(
        principal.actor,
        "workflows.share",
        resource_type="workflows",
        resource_id=workflow_id,
        details={
            "shares": [{"type": s.subject_type, "id": s.subject_id, "role": s.role} for s in shares],
            "request_id": str(getattr(request.state, "request_id", "")),
        },
    )
    return _out(store, workflow_id, shares)
