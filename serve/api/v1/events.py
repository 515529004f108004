"""Live events of a run: `GET /v1/runs/{id}/events` (Server-Sent Events, honours `Last-Event-ID`) and
`WS /v1/runs/{id}/events?after=SEQ` (one JSON message per event). Both close when the run ends."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from engine.formats.cloudevents import to_cloudevent
from engine.store import Store
from nodes.ids import RunId
from serve.api.v1.runs import owned_run
from serve.api.v1.schemas import AUTH_ERRORS, MAX_INT, NOT_FOUND
from serve.auth import Principal, authenticate, authorize, client_host, require
from serve.deps import get_context, get_store
from serve.errors import ApiError, BadRequestError
from serve.problems import ws_close_reason, ws_refusal_code
from serve.sessions import check_websocket_origin
from serve.streams import follow_events, with_keepalive

router = APIRouter(prefix="/runs", tags=["runs"], responses=AUTH_ERRORS)

#: WebSocket close codes: 1000 after the final event; 4000 + HTTP status when the request is refused
#: (`serve.problems.ws_refusal_code`: 4400, 4401, 4403, 4404, 4422 for a bad `after`, 4429).
WS_DONE = 1000

# ASCII digits only: str.isdigit() also accepts "²" and other digits int() cannot read.
_SEQUENCE = re.compile(r"[0-9]{1,19}")


def _last_event_id(value: str) -> int:
    """The sequence number of a `Last-Event-ID` header; 400 unless it is one (0 to 2^63-1)."""
    text = value.strip()
    if _SEQUENCE.fullmatch(text) is None or int(text) > MAX_INT:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise BadRequestError(
            f"Last-Event-ID {shown!r} is not a sequence number; send the id of the last event received "
            f"(0 to {MAX_INT}) or no Last-Event-ID"
        )
    return int(text)


@router.get(
    "/{run_id}/events",
    summary="Run events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        200: {
            "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/RunEvent"}}},
            "description": "One SSE per event: `id` is its `seq`, `event` its `type` and `data` its JSON, a "
            "`RunEvent` (the WebSocket sends the same JSON, one message per event); with "
            "`format=cloudevents`, a CloudEvent 1.0 in the structured JSON mode.",
        },
    },
)
def stream_events(
    run_id: RunId,
    request: Request,
    after: int | None = Query(
        default=None, ge=0, le=MAX_INT, description="Send events with a greater sequence number."
    ),
    last_event_id: str | None = Header(
        default=None,
        description="Resume after this sequence (SSE reconnect).",
        # Documented, not enforced by the schema: the route answers 400 with its own message for other text.
        json_schema_extra={"pattern": r"^[ \t]*[0-9]{1,19}[ \t]*$"},
    ),
    format: Literal["native", "cloudevents"] = Query(
        default="native",
        description="`cloudevents`: each `data` is the event as a CloudEvent 1.0 (structured JSON mode).",
    ),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> StreamingResponse:
    """Every event after `after` (or `Last-Event-ID`), live while the run goes on; the stream ends with it."""
    owned_run(store, principal, run_id)
    start = after or 0
    if last_event_id is not None:
        start = max(start, _last_event_id(last_event_id))
    poll_s = get_context(request).options.event_poll_s
    notices = getattr(request.app.state, "run_notices", None)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        async for event in follow_events(store, run_id, start, poll_s=poll_s, notices=notices):
            form = to_cloudevent(event) if format == "cloudevents" else event.to_json()
            data = json.dumps(form, separators=(",", ":"))
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()

    return StreamingResponse(
        with_keepalive(body()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/{run_id}/events")
async def websocket_events(
    websocket: WebSocket,
    run_id: RunId,
    after: int = Query(
        default=0, ge=0, le=MAX_INT, description="Send events with a greater sequence number."
    ),
) -> None:
    """The same events as JSON messages; authenticate with the `Authorization` header of the handshake.
    An invalid `after` closes the socket with 4422 (see `serve.problems`)."""
    from starlette.concurrency import run_in_threadpool

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
        authorize(ctx, principal, "runs:read", client_host(websocket))
        await run_in_threadpool(owned_run, ctx.store, principal, run_id)
    except ApiError as exc:
        # Accept first so the client sees why (close code 4000 + HTTP status) instead of a bare 403 handshake.
        await websocket.accept()
        await websocket.close(code=ws_refusal_code(exc.status), reason=ws_close_reason(exc.detail))
        return
    await websocket.accept()
    try:
        notices = getattr(websocket.app.state, "run_notices", None)
        poll_s = ctx.options.event_poll_s
        async for event in follow_events(ctx.store, run_id, after, poll_s=poll_s, notices=notices):
            await websocket.send_json(event.to_json())
        await websocket.close(code=WS_DONE)
    except WebSocketDisconnect:
        return
