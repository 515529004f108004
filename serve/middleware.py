"""The one ASGI middleware of the API: request ids, the body size limit, metrics and the audit of mutations.

Written as plain ASGI (not `BaseHTTPMiddleware`) so streaming responses (SSE) pass through untouched and
WebSockets are not wrapped at all.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.problems import problem_body

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _BodyTooLarge(Exception):
    pass


class ApiMiddleware:
    """Wraps the FastAPI app; see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False, "too_large": False}
        method = scope["method"]

        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, send, request_id)
            await self._finish(scope, method, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    status_holder["too_large"] = True
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if status_holder["too_large"]:
                # The framework turned our abort into its own error response; answer 413 instead.
                if message["type"] == "http.response.start" and not status_holder["started"]:
                    status_holder["started"] = True
                    await self._too_large(scope, send, request_id)
                status_holder["status"] = 413
                return
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not status_holder["started"]:
                await self._too_large(scope, send, request_id)
            status_holder["status"] = 413
        await self._finish(scope, method, int(status_holder["status"]), started)

    async def _too_large(self, scope: Scope, send: Send, request_id: str) -> None:
        import json

        body = json.dumps(
            problem_body(
                413,
                f"the request body exceeds {self.max_body_bytes} bytes; send a smaller body "
                "(the limit is ServeOptions.max_body_bytes)",
                instance=scope.get("path", ""),
                request_id=request_id,
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _finish(self, scope: Scope, method: str, status: int, started: float) -> None:
        app = scope.get("app")
        ctx = getattr(getattr(app, "state", None), "rayweave", None)
        if ctx is None:
            return
        route = _template(scope)
        ctx.metrics.observe(method, route, status, time.perf_counter() - started)
        if method in MUTATING and status not in (401,):
            # 401s are audited by the auth dependency, which knows why the credentials failed.
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(_audit, ctx, scope, method, route, status)


def _audit(ctx: Any, scope: Scope, method: str, route: str, status: int) -> None:
    state = scope.get("state", {})
    principal = state.get("principal")
    outcome = "ok" if status < 400 else ("denied" if status in (403, 429) else "error")
    target = dict(scope.get("path_params") or {})
    resource_type = route.split("/")[2] if route.startswith("/v1/") and route.count("/") >= 2 else route
    try:
        ctx.store.audit.append(
            principal.actor if principal is not None else "anonymous",
            f"{method} {route}",
            resource_type=resource_type,
            resource_id=str(state.get("audit_target") or ",".join(f"{k}={v}" for k, v in target.items())),
            outcome=outcome,
            details={
                "status": status,
                "request_id": state.get("request_id", ""),
                "path": scope.get("path", ""),
            },
        )
    except Exception:  # the audit must never turn a served request into an error
        import logging

        logging.getLogger("rayweave.serve").exception(
            "could not write the audit entry of %s %s", method, route
        )


def _template(scope: Scope) -> str:
    """The route template (`/v1/runs/{run_id}`) of a matched request; "unmatched" for 404s.

    Rebuilt from the path and its parameters because routers included into routers keep their own paths.
    """
    if scope.get("route") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    params = {str(k): str(v) for k, v in (scope.get("path_params") or {}).items()}
    for name, value in sorted(params.items(), key=lambda item: -len(item[1])):
        if value:
            path = path.replace("/" + value, "/{" + name + "}", 1)
    return path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
