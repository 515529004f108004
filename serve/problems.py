"""RFC 9457 problem responses for every error the API can produce.

Handlers cover our own `ApiError`s, the store's errors, FastAPI's request validation (malformed JSON, unknown
fields, wrong types), Starlette's HTTP errors (unknown route 404, 405) and, last, any other exception: that one
becomes a 500 problem that names the request id but never shows a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.errors import PROBLEM_BASE, ApiError

PROBLEM_MEDIA_TYPE = "application/problem+json"

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
    elif status == 405:
        detail = f"{request.url.path} does not accept {request.method}; /openapi.json lists its methods"
    else:
        detail = str(exc.detail)
    return problem_response(
        status,
        detail,
        instance=_instance(request),
        headers=dict(exc.headers or {}),
        request_id=_request_id(request),
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    from engine.store import IdempotencyConflictError, NotFoundError, VersionConflictError

    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, VersionConflictError):
        status = 412
    elif isinstance(exc, IdempotencyConflictError):
        status = 409
    else:
        return await _unexpected(request, exc)
    return problem_response(status, str(exc), instance=_instance(request), request_id=_request_id(request))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    logging.getLogger("rayweave.serve").error(
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
    from engine.store import StoreError

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(Exception, _unexpected)
