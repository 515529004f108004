"""Whether a caller may see or change one workflow or run: `serve.policy`'s rules over the store's records.

Every route that takes a workflow or run id goes through `visible_workflow` / `visible_run` (via
`serve.api.v1.workflows.owned_workflow` and `serve.api.v1.runs.owned_run`, which the WebSocket path uses too).
What the caller may not see is 404, exactly as a missing id (no probing other tenants' ids); what it may see but
not change at the level asked is 403, naming the level it has and the one needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serve.errors import ForbiddenError, NotFoundError
from serve.policy import Access

if TYPE_CHECKING:
    from engine.store import Store
    from serve.auth import Principal

#: How a level is named in messages.
LEVEL_NAMES = {
    Access.VIEW: "viewer",
    Access.RUN: "runner",
    Access.EDIT: "editor",
    Access.MANAGE: "its owner or an admin of its tenant",
}


def _tenant_of(store: Store, user_id: str) -> str | None:
    from engine.store import NotFoundError as StoreNotFound

    try:
        return store.users.get(user_id).tenant_id
    except StoreNotFound:
        return None


def workflow_access(store: Store, principal: Principal, workflow_id: str, owner: str | None) -> Access:
    """The principal's access to the workflow `workflow_id` of `owner` (None: deleted, shares only)."""
    from serve.policy import access_to_workflow

    if principal.is_admin or (owner is not None and owner == principal.user_id):
        return Access.MANAGE
    owner_tenant = _tenant_of(store, owner) if owner is not None and principal.sees_tenant else None
    return access_to_workflow(
        is_admin=False,
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        sees_tenant=principal.sees_tenant and owner is not None,
        owner=owner or "",
        owner_tenant=owner_tenant,
        share_role=store.shares.role_of(workflow_id, principal.audience),
    )


def _need(what: str, have: Access, need: Access, principal: Principal) -> None:
    if have < need:
        raise ForbiddenError(
            f"{what} is shared with {principal.username!r} as {LEVEL_NAMES.get(have, have.name.lower())}; this "
            f"needs {LEVEL_NAMES[need]} — ask its owner to share it at that role (PUT /v1/workflows/{{id}}/shares)"
        )


def visible_workflow(store: Store, principal: Principal, workflow_id: str, need: Access = Access.VIEW) -> Any:
    """The workflow record if the principal may see it (else 404) and has `need` on it (else 403)."""
    from engine.store import NotFoundError as StoreNotFound

    try:
        wf = store.workflows.get(workflow_id)  # type: ignore[arg-type]
    except StoreNotFound:
        wf = None
    have = Access.NONE if wf is None else workflow_access(store, principal, wf.id, wf.owner)
    if wf is None or have == Access.NONE:
        raise NotFoundError(f"workflow {workflow_id!r} does not exist; GET /v1/workflows lists yours")
    _need(f"workflow {workflow_id!r}", have, need, principal)
    return wf


def run_access(store: Store, principal: Principal, run: Any) -> Access:
    """The principal's access to a run: its own runs and its tenant's (for `sees_tenant` roles) fully, others'
    runs as its access to their workflow."""
    from engine.store import NotFoundError as StoreNotFound

    if principal.is_admin or run.owner == principal.user_id:
        return Access.MANAGE
    if principal.sees_tenant and _tenant_of(store, run.owner) == principal.tenant_id:
        return Access.MANAGE
    if run.workflow_id is None:
        return Access.NONE
    try:
        owner: str | None = store.workflows.get(run.workflow_id).owner
    except StoreNotFound:
        owner = None  # a deleted workflow: its shares still show its runs
    return workflow_access(store, principal, run.workflow_id, owner)


def visible_run(store: Store, principal: Principal, run_id: str, need: Access = Access.VIEW) -> Any:
    """The run if the principal may see it (else 404) and has `need` on it (else 403)."""
    from engine.store import NotFoundError as StoreNotFound

    try:
        run = store.runs.get(run_id)  # type: ignore[arg-type]
    except StoreNotFound:
        run = None
    have = Access.NONE if run is None else run_access(store, principal, run)
    if run is None or have == Access.NONE:
        raise NotFoundError(f"run {run_id!r} does not exist; GET /v1/runs lists yours")
    _need(f"the workflow of run {run_id!r}", have, need, principal)
    return run
