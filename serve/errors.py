"""Errors of the HTTP API. Each maps to one RFC 9457 problem (status, title, detail) and subclasses a builtin.

Routes raise these; `serve.problems` turns them, and every other error, into `application/problem+json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_BASE = "https://rayweave.dev/problems/"


class ApiError(Exception):
    """Base of every API error: an HTTP status, a stable problem `type` slug, a title and a detail sentence."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    @property
    def type_uri(self) -> str:
        """The problem `type` URI (stable; clients may match on it)."""
        return PROBLEM_BASE + self.slug


class BadRequestError(ApiError, ValueError):
    """The request is malformed (bad JSON, unknown field, wrong type, bad cursor)."""

    status, slug, title = 400, "bad-request", "Bad request"


class UnauthorizedError(ApiError, PermissionError):
    """No credentials, or credentials that are malformed, unknown, expired or revoked."""

    status, slug, title = 401, "unauthorized", "Authentication required"


class ForbiddenError(ApiError, PermissionError):
    """The API key is valid but lacks the scope the route needs."""

    status, slug, title = 403, "forbidden", "Missing scope"


class NotFoundError(ApiError, LookupError):
    """The resource does not exist, or belongs to another owner (the two are indistinguishable on purpose)."""

    status, slug, title = 404, "not-found", "Not found"


class ConflictError(ApiError, ValueError):
    """The request conflicts with the current state (e.g. an idempotency key reused for another request)."""

    status, slug, title = 409, "conflict", "Conflict"


class StoredValueError(ApiError, ValueError):
    """A stored resource holds a value that cannot be sent as JSON (stored before the input limits existed)."""

    status, slug, title = 409, "stored-value", "Stored value cannot be sent"


class PreconditionFailedError(ApiError, ValueError):
    """`If-Match` named a version that is no longer the latest."""

    status, slug, title = 412, "precondition-failed", "Version mismatch"


class PreconditionRequiredError(ApiError, ValueError):
    """An update was sent without `If-Match`."""

    status, slug, title = 428, "precondition-required", "If-Match required"


class PayloadTooLargeError(ApiError, ValueError):
    """The request body is larger than the configured limit."""

    status, slug, title = 413, "payload-too-large", "Request body too large"


class InvalidWorkflowError(ApiError, ValueError):
    """The workflow document (or its inputs) does not validate; `diagnostics` say where and why."""

    status, slug, title = 422, "invalid-workflow", "Invalid workflow"

    def __init__(self, detail: str, diagnostics: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail, extra={"diagnostics": [dict(d) for d in diagnostics]})


class InvalidImportError(ApiError, ValueError):
    """A line of a bulk import (`POST /v1/import`) is invalid: `line`, `field` and `imported_through` (the last
    line of the batches already committed) say where and what stays imported."""

    status, slug, title = 422, "invalid-import", "Invalid import"

    def __init__(self, detail: str, *, line: int, field: str | None, imported_through: int) -> None:
        super().__init__(detail, extra={"line": line, "field": field, "imported_through": imported_through})


class RateLimitedError(ApiError, RuntimeError):
    """The API key used up its request budget; retry after `Retry-After` seconds."""

    status, slug, title = 429, "rate-limited", "Too many requests"


class NotImplementedFeatureError(ApiError, NotImplementedError):
    """A feature this server build does not provide (e.g. plugin installation without `nodes.plugins`)."""

    status, slug, title = 501, "not-implemented", "Not implemented"


class UnavailableError(ApiError, RuntimeError):
    """A dependency (database, Ray) is not reachable."""

    status, slug, title = 503, "unavailable", "Service unavailable"


class BadGatewayError(ApiError, ConnectionError):
    """A service the server calls on the caller's behalf (e.g. the model endpoint of drafts) failed or answered
    nonsense; the detail names it and what went wrong."""

    status, slug, title = 502, "bad-gateway", "Upstream service failed"


class ClientError(Exception):
    """Raised by `serve.client` when the server answers with an error; carries the problem document."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        detail = problem.get("detail") or problem.get("title") or "request failed"
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.problem = problem


class ClientConfigError(ClientError, ValueError):
    """The client has no API key: pass one, set RAYWEAVE_API_KEY, or run the server once to create admin.key."""

    def __init__(self, message: str) -> None:
        super().__init__(0, {"detail": message})


class OutputsOmittedWarning(UserWarning):
    """Warned by `serve.client` when a run's outputs leave some out (beyond the server's size cap, or
    unreadable): their names, and how to get them, are in `omitted_outputs()`."""
