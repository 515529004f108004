"""The OpenAPI document as clients should read it: every error response is `application/problem+json`.

FastAPI documents error models as `application/json` and its own validation errors with `HTTPValidationError`;
this rewrites both to the `Problem` schema and documents the errors every route can answer (400 malformed
body, 413 oversize body, 422 schema mismatch; for protected routes 401, 403 and 429; 404 where the path names
a resource), so generated clients and schema checks see what the server really sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serve.api.v1.schemas import Problem
from serve.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ALWAYS = {
    "400": "Malformed request (e.g. invalid JSON).",
    "413": "Request body too large.",
    "422": "The request does not match the schema, or the workflow is invalid.",
}
_PROTECTED = {
    "401": "Missing, malformed, unknown, expired or revoked API key.",
    "403": "The API key lacks the scope.",
    "429": "Rate limit exceeded; see Retry-After.",
}
_OPEN_PATHS = frozenset({"/v1/health", "/v1/ready"})


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """Build (once) and return the app's OpenAPI document with problem responses."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            extra = dict(_ALWAYS)
            if path not in _OPEN_PATHS:
                extra.update(_PROTECTED)
            if "{" in path:
                extra["404"] = "No such resource (or another owner's)."
            for status, description in extra.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and not (path == "/v1/ready" and status == "503"):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
    app.openapi_schema = document
    return document
