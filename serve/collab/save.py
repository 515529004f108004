"""Saving a shared document as a workflow version, through the same validation as `PUT /v1/workflows/{id}`."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from engine.store import NotFoundError as StoreNotFoundError
from engine.store import Store, VersionConflictError
from nodes import Catalog
from nodes.ids import WorkflowId
from serve.auth import Principal
from serve.collab.document import to_workflow
from serve.collab.room import Room
from serve.collab.rooms import CollabRooms
from serve.errors import ConflictError, InvalidWorkflowError, NotFoundError


async def save_shared(
    rooms: CollabRooms,
    store: Store,
    catalog: Catalog,
    workflow_id: WorkflowId,
    principal: Principal,
    message: str,
) -> Any:
    """Store the shared document of `workflow_id` as its next version and return it.

    The room first catches up with the store; when that brought in a version saved meanwhile through the REST
    API, nothing is saved (409): its changes are merged into the shared document and the people editing should
    see them before saving. An invalid document is refused (422) with the compiler's diagnostics, and the
    shared document and the stored versions stay as they were.
    """
    try:
        async with rooms.joined(workflow_id) as room:
            return await _save(room, store, catalog, workflow_id, principal, message)
    except StoreNotFoundError:  # deleted meanwhile
        raise NotFoundError(
            f"workflow {workflow_id!r} does not exist; GET /v1/workflows lists yours"
        ) from None


async def _save(
    room: Room, store: Store, catalog: Catalog, workflow_id: WorkflowId, principal: Principal, message: str
) -> Any:
    from serve.api.v1.workflows import require_valid

    based_on = room.base_version
    await room.follow()
    if room.base_version != based_on:
        raise ConflictError(
            f"workflow {workflow_id!r} was saved as version {room.base_version} meanwhile (through the API); "
            "its changes are now merged into the shared document: review them and save again"
        )
    document = to_workflow(room.doc)
    try:
        await run_in_threadpool(require_valid, document, catalog)
    except InvalidWorkflowError as exc:
        raise InvalidWorkflowError(
            f"the shared document of workflow {workflow_id!r} is not a valid workflow ({exc.detail}); "
            "nothing was saved: fix what the diagnostics name in the editor and save again",
            exc.extra.get("diagnostics", []),
        ) from None
    try:
        version = await run_in_threadpool(
            lambda: store.workflows.save(
                workflow_id,
                document,
                expected_version=based_on,
                author=principal.username,
                message=message,
            )
        )
    except VersionConflictError as exc:
        raise ConflictError(
            f"{exc}; the shared document takes in that version within a second: review it and save again"
        ) from None
    await room.mark_saved(version.version)
    return version
