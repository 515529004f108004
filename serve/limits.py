"""Limits on what a request may carry, checked at the door before anything is stored or compiled.

The limits on JSON values are the store's (`engine.jsonlimits`): a workflow document, a constant, params or run
inputs nest at most `MAX_JSON_DEPTH` levels; text holds no NUL character and no lone UTF-16 surrogate; numbers
are finite. `check_json` enforces them on a request body's field (see `serve.api.v1.schemas`);
`InputLimitsMiddleware` refuses NUL characters in the URL (path and query), which reach the store as ids,
filters and audit entries.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.jsonlimits import MAX_JSON_DEPTH, JsonLimitError, check_json, check_text

__all__ = ["MAX_JSON_DEPTH", "InputLimitsMiddleware", "JsonLimitError", "check_json", "check_text"]


class InputLimitsMiddleware:
    """Refuses a request whose path or query holds a NUL character (`%00`) with a 400 problem (a WebSocket:
    accepted, then closed with 4400) before routing, authentication or the audit see it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _refuse_http(scope, send, problem)
        else:
            await _refuse_websocket(receive, send, problem)


def _url_problem(scope: Scope) -> str | None:
    path = str(scope.get("path", ""))
    if "\x00" in path:
        return (
            f"the path {path.replace(chr(0), '%00')!r} contains a NUL character (%00); no id or name has one"
        )
    query = bytes(scope.get("query_string", b""))
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "%00")
                return f"query parameter {shown!r} contains a NUL character (%00); remove it"
    return None


async def _refuse_http(scope: Scope, send: Send, detail: str) -> None:
    from serve.problems import PROBLEM_MEDIA_TYPE, problem_body

    # Outside the API middleware (so neither the audit nor the metrics store the NUL): an id of its own.
    request_id = uuid.uuid4().hex
    instance = str(scope.get("path", "")).replace("\x00", "%00")
    body = json.dumps(problem_body(400, detail, instance=instance, request_id=request_id)).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(receive: Receive, send: Send, detail: str) -> None:
    from serve.problems import ws_close_reason, ws_refusal_code

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": ws_refusal_code(400), "reason": ws_close_reason(detail)})
