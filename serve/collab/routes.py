"""The collaboration routes: `WS /v1/workflows/{id}/collab` (y-websocket protocol) and
`POST /v1/workflows/{id}/collab/save`.

The socket authenticates like the run-events socket: the `Authorization` header of the handshake, or the
browser session cookie from this server's own origin. It needs `workflows:read` on a workflow the caller may
see (another owner's is 4404, as a GET would be 404); without `workflows:write`, or with only viewer or runner
access to the workflow (`serve.policy_access`: a share below editor), the sync is read-only. A
refused socket is accepted and closed with 4000 + the HTTP status and the reason (`serve.problems`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, WebSocket
from starlette.concurrency import run_in_threadpool

from nodes import Catalog
from nodes.ids import WorkflowId
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND, Problem, WorkflowVersionOut
from serve.auth import Principal, authenticate, authorize, client_host, require
from serve.collab.rooms import CollabRooms
from serve.collab.schemas import CollabSave
from serve.deps import get_catalog, get_context
from serve.errors import ApiError, ForbiddenError
from serve.problems import ws_close_reason, ws_refusal_code
from serve.sessions import check_websocket_origin

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=AUTH_ERRORS)


def collab_rooms(connection: Request | WebSocket) -> CollabRooms:
    """The server's rooms (`serve.collab.rooms`), started by the app's lifespan."""
    rooms: CollabRooms = connection.app.state.collab
    return rooms


@router.websocket("/{workflow_id}/collab")
async def collab_socket(websocket: WebSocket, workflow_id: WorkflowId) -> None:
    """Co-edit a workflow's shared document (y-websocket protocol: sync, updates, awareness)."""
    ctx = get_context(websocket)
    try:
        check_websocket_origin(websocket)
        principal = await run_in_threadpool(
            authenticate,
            ctx,
            websocket.headers,
            action=f"WS {websocket.url.path}",
            client=client_host(websocket),
        )
        authorize(ctx, principal, "workflows:read", client_host(websocket))
        writable = await run_in_threadpool(_may_edit, ctx.store, principal, workflow_id)
    except ApiError as exc:
        # Accept first so the client sees why (close code 4000 + HTTP status) instead of a bare 403 handshake.
        await websocket.accept()
        await websocket.close(code=ws_refusal_code(exc.status), reason=ws_close_reason(exc.detail))
        return
    await websocket.accept()

    async def recheck() -> bool:
        """The same checks again (without spending rate budget): a revoked key or a lost share closes the
        socket, a share lowered below editor makes it read-only."""
        again = await run_in_threadpool(
            authenticate,
            ctx,
            websocket.headers,
            action=f"WS {websocket.url.path}",
            client=client_host(websocket),
        )
        if not again.allows("workflows:read"):
            raise ForbiddenError(f"API key {again.key_prefix!r} no longer has scope 'workflows:read'")
        return await run_in_threadpool(_may_edit, ctx.store, again, workflow_id)

    await collab_rooms(websocket).serve(
        websocket, workflow_id, writable=writable, who=principal.username, recheck=recheck
    )


def _may_edit(store: Any, principal: Principal, workflow_id: WorkflowId) -> bool:
    """Whether the principal edits the shared document (else read-only sync): the `workflows:write` scope and
    editor access to the workflow (`serve.policy_access`: its own, or shared with it as editor). Raises 404
    when it may not even see the workflow."""
    from serve.api.v1.workflows import owned_workflow
    from serve.policy import Access
    from serve.policy_access import workflow_access

    wf = owned_workflow(store, principal, workflow_id)
    if not principal.allows("workflows:write"):
        return False
    return workflow_access(store, principal, wf.id, wf.owner) >= Access.EDIT


@router.post(
    "/{workflow_id}/collab/save",
    response_model=WorkflowVersionOut,
    status_code=201,
    summary="Save the shared document as a version",
    responses={
        **NOT_FOUND,
        **INVALID,
        409: {"model": Problem, "description": "A version was saved meanwhile; it is merged in, save again."},
    },
)
async def save_collab(
    workflow_id: WorkflowId,
    body: CollabSave,
    request: Request,
    response: Response,
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(require("workflows:write")),
) -> Any:
    """Validate the shared (co-edited) document and store it as the workflow's next version; every client of
    the document sees the new version number in `meta.version`."""
    from serve.api.v1.workflows import _announce, _version_out, owned_workflow
    from serve.collab.save import save_shared
    from serve.policy import Access

    store = get_context(request).store
    wf = await run_in_threadpool(owned_workflow, store, principal, workflow_id, Access.EDIT)
    request.state.audit_target = workflow_id
    version = await save_shared(collab_rooms(request), store, catalog, workflow_id, principal, body.message)
    _announce(request, str(workflow_id), "workflow.saved", version.version)  # the other servers' rooms
    response.headers["ETag"] = f'"{version.version}"'
    return _version_out(wf, version)
