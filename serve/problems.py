"""RFC 9457 problem responses for every error the API can produce.

Handlers cover our own `ApiError`s, the store's errors, FastAPI's request validation (malformed JSON, unknown
fields, wrong types), Starlette's HTTP errors (unknown route 404, 405 with every allowed method in `Allow`),
database errors (a generic 503 or 500: the driver's text, which may quote stored data, stays in the server log)
and, last, any other exception: that one becomes a 500 problem that names the request id but never shows a
traceback. A WebSocket whose query does not validate is accepted and closed with 4422 and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocket

from serve.errors import PROBLEM_BASE, ApiError

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: A refused WebSocket is accepted and then closed with 4000 + the HTTP status the same request would get
#: (4400 bad request, 4401, 4403, 4404, 4422 invalid query, 4429), so clients see why instead of a bare 403.
WS_REFUSED_BASE = 4000

#: The methods a 405's `Allow` may list, in this order (HEAD and OPTIONS after them).
_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")

log = logging.getLogger("rayweave.serve")

_STATUS_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Missing scope"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Version mismatch"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Request validation failed"),
    428: ("precondition-required", "If-Match required"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Internal server error"),
    501: ("not-implemented", "Not implemented"),
    503: ("unavailable", "Service unavailable"),
}


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str = "",
    slug: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON body of a problem response."""
    default_slug, default_title = _STATUS_TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    slug: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """A `JSONResponse` with the problem body and the problem media type."""
    body = problem_body(status, detail, instance=instance, slug=slug, title=title, **extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def ws_refusal_code(status: int) -> int:
    """The WebSocket close code of a connection refused with HTTP `status` (4000 + status)."""
    return WS_REFUSED_BASE + status


def ws_close_reason(detail: str) -> str:
    """`detail` cut to the 123 bytes of UTF-8 a WebSocket close reason may hold."""
    encoded = detail.encode("utf-8")
    if len(encoded) <= 123:
        return detail
    return encoded[:120].decode("utf-8", errors="ignore") + "..."


def _instance(request: Request) -> str:
    return str(request.url.path)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status,
        exc.detail,
        instance=_instance(request),
        headers=exc.headers,
        slug=exc.slug,
        title=exc.title,
        request_id=_request_id(request),
        **exc.extra,
    )


def _location(loc: Any) -> str:
    # FastAPI locations start with where the value came from ("body", "query", "header", "path").
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        kind = str(err.get("type", ""))
        where = _location(err.get("loc", ()))
        if kind == "json_invalid":
            message = f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
        elif kind == "extra_forbidden":
            message = "unknown field; remove it (the schema in /docs lists the fields)"
        elif kind == "timezone_aware":
            message = "the date-time has no time zone, so it is ambiguous; add one, e.g. 2030-01-01T00:00:00Z for UTC"
        elif kind == "bool_type":
            message = 'must be a JSON boolean, true or false (strings such as "yes" or "true" are refused)'
        else:
            message = str(err.get("msg", "invalid value"))
        errors.append({"field": where, "message": message, "type": kind})
    malformed = any(e["type"] == "json_invalid" for e in errors)
    status = 400 if malformed else 422
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(
        status,
        f"the request does not match the schema: {summary}; fix these fields and send it again",
        instance=_instance(request),
        request_id=_request_id(request),
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; the routes are listed in /openapi.json"
    headers = dict(exc.headers or {})
    if status == 405:
        allowed = _allowed_methods(request)
        if allowed:
            # Starlette names only the methods of the first route matching the path; a path served by
            # several routes (GET and POST /v1/runs) must list them all (RFC 9110, section 15.5.6).
            headers["Allow"] = ", ".join(allowed)
        detail = (
            f"{request.url.path} does not accept {request.method}; it accepts {', '.join(allowed) or 'none'}"
        )
    else:
        detail = str(exc.detail)
    return problem_response(
        status,
        detail,
        instance=_instance(request),
        headers=headers,
        request_id=_request_id(request),
    )


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the path's resource: those of the most specific routes matching the path (a literal
    `/v1/workflows/validate` before the template `/v1/workflows/{workflow_id}`), as the OpenAPI document lists
    them for it."""
    path = request.url.path
    matching: list[tuple[int, set[str]]] = []
    for route in _http_routes(request.app):
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            matching.append((str(getattr(route, "path", "")).count("{"), set(methods)))
    if not matching:
        return []
    fewest = min(params for params, _ in matching)
    allowed = set().union(*(methods for params, methods in matching if params == fewest))
    return sorted(allowed, key=lambda m: (_METHOD_ORDER.index(m) if m in _METHOD_ORDER else 99, m))


def _http_routes(app: Any) -> list[Any]:
    """Every route of the app, with those of included routers (which FastAPI may keep behind one entry)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI keeps included routes flat in app.routes
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    from engine.store import IdempotencyConflictError, NotFoundError, VersionConflictError, WorkflowFileError

    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, WorkflowFileError):
        # A workflow file of the files backend that does not parse or validate: the message names the file.
        status = 422
    elif isinstance(exc, VersionConflictError):
        status = 412
    elif isinstance(exc, IdempotencyConflictError):
        status = 409
    else:
        return await _unexpected(request, exc)
    return problem_response(status, str(exc), instance=_instance(request), request_id=_request_id(request))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    from engine.store import is_unavailable

    request_id = _request_id(request)
    # The driver's message can quote the statement and its parameters (stored data): it goes to the log only.
    log.error(
        "request %s %s failed in the database (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    if is_unavailable(exc):
        return problem_response(
            503,
            f"the database is not available right now; retry later (request id {request_id!r})",
            instance=_instance(request),
            headers={"Retry-After": "5"},
            request_id=request_id,
        )
    return problem_response(
        500,
        f"the server failed while handling this request; report request id {request_id!r} to the operator",
        instance=_instance(request),
        request_id=request_id,
    )


async def _websocket_validation_error(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketRequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    reason = f"{_location(first.get('loc', ()))}: {first.get('msg', 'invalid value')}"
    await websocket.accept()
    await websocket.close(code=ws_refusal_code(422), reason=ws_close_reason(reason))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    log.error(
        "request %s %s failed (request id %s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return problem_response(
        500,
        f"the server failed while handling this request; report request id {request_id!r} to the operator",
        instance=_instance(request),
        request_id=request_id,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the problem handlers on `app`."""
    from engine.store import StoreError, backend_errors

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(WebSocketRequestValidationError, _websocket_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreError, _store_error)
    for database_error in backend_errors():
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
