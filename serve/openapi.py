"""The OpenAPI document as clients should read it: every error response is `application/problem+json`.

FastAPI documents error models as `application/json` and its own validation errors with `HTTPValidationError`;
this rewrites both to the `Problem` schema and documents the errors every route can answer (400 malformed
body, 413 oversize body, 422 schema mismatch; for protected routes 401, 403 and 429; 404 where the path names
a resource), so generated clients and schema checks see what the server really sends. Request strings (parameters and
body fields) carry the pattern of `serve.limits`: no NUL character. Optional parameters are described by
`required: false` alone: FastAPI's `anyOf [..., null]` would tell clients they may send the text "null".
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serve.api.v1.schemas import Problem, RunEvent
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
_OPEN_PATHS = frozenset({"/v1/health", "/v1/ready", "/v2/health/live", "/v2/health/ready"})


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """Build (once) and return the app's OpenAPI document with problem responses."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, RunEvent):  # documented by the error responses and the event streams, not a route
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _parameters_without_null(document)
    _document_text_limit(document)
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


#: The JSON Schema form of the text limit of `serve.limits` (no NUL character); the limits on nesting depth and
#: lone surrogates have no JSON Schema form and are documented in the HTTP guide.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _parameters_without_null(document: dict[str, Any]) -> None:
    """`anyOf: [X, {"type": "null"}]` of optional parameters becomes X: a header, query or path value is text,
    never JSON null; leaving a parameter out is what `required: false` says."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                members = schema.get("anyOf", [])
                others = [m for m in members if m.get("type") != "null"]
                if len(members) == 2 and len(others) == 1:
                    rest = {k: v for k, v in schema.items() if k != "anyOf"}
                    parameter["schema"] = {**others[0], **rest}


def _document_text_limit(document: dict[str, Any]) -> None:
    """Give every string of a request (parameters, body fields, list items) the no-NUL pattern."""
    schemas = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                _limit_strings(parameter.get("schema", {}), schemas, seen)
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _limit_strings(content.get("schema", {}), schemas, seen)


def _limit_strings(schema: dict[str, Any], schemas: dict[str, Any], seen: set[str]) -> None:
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in schemas:
            seen.add(name)
            _limit_strings(schemas[name], schemas, seen)
        return
    if schema.get("type") == "string" and "format" not in schema and "pattern" not in schema:
        schema["pattern"] = NO_NUL_PATTERN
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key, []):
            _limit_strings(member, schemas, seen)
    for child in schema.get("properties", {}).values():
        _limit_strings(child, schemas, seen)
    if isinstance(schema.get("items"), dict):
        _limit_strings(schema["items"], schemas, seen)
