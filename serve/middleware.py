"""The one ASGI middleware of the API: request ids, the body size limit, metrics and the audit of mutations.

Written as plain ASGI (not `BaseHTTPMiddleware`) so streaming responses (SSE) pass through untouched and
WebSockets are not wrapped at all.

Every response carries exactly one `X-Request-Id`. A client's own `X-Request-Id` is kept (and echoed) only when it
is a safe token (`SAFE_REQUEST_ID`: 1 to 128 of `A-Z a-z 0-9 . _ -`); anything else is replaced by a fresh id, so
what reaches logs, problem bodies and the audit is never a client's arbitrary text. On Ray Serve the HTTP proxy
adds its own `X-Request-Id` outside the app: `proxy_middlewares` (installed in the proxy by `serve.deployment`)
applies the same rule there and leaves one header on the way out.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.problems import problem_body

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: A client-supplied request id is echoed only when it matches this; otherwise a fresh one is made.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_REQUEST_ID = b"x-request-id"
_DIGITS = re.compile(r"[0-9]+")
#: Routes that stream their request body (bulk import): `max_body_bytes` does not apply to them.
STREAMED_BODY_PATHS = frozenset({"/v1/import"})


def request_id_of(scope: Scope) -> str:
    """The request id to use for a request: the client's `X-Request-Id` when it is safe, else a new one."""
    supplied = _header(scope, _REQUEST_ID)
    if supplied is not None and SAFE_REQUEST_ID.fullmatch(supplied):
        return supplied
    return uuid.uuid4().hex


def with_request_id(headers: list[Any], request_id: str) -> list[Any]:
    """`headers` (ASGI pairs) with every `x-request-id` replaced by one carrying `request_id`."""
    kept = [pair for pair in headers if bytes(pair[0]).lower() != _REQUEST_ID]
    kept.append((_REQUEST_ID, request_id.encode()))
    return kept


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
        request_id = request_id_of(scope)
        # Handlers reading the header (Ray Serve's replica, logs) see the same id as the response carries.
        scope["headers"] = with_request_id(list(scope.get("headers", [])), request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False, "too_large": False}
        method = scope["method"]

        # A streamed import reads its body line by line in constant memory: no limit on its size.
        streamed = scope.get("path") in STREAMED_BODY_PATHS
        declared = _header(scope, b"content-length")
        # ASCII digits only (str.isdigit accepts "²"), and a length too long to read is too large anyway.
        if (
            declared is not None
            and not streamed
            and _DIGITS.fullmatch(declared)
            and (len(declared) > 18 or int(declared) > self.max_body_bytes)
        ):
            await self._too_large(scope, send, request_id)
            await self._finish(scope, method, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not streamed:
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
                headers = with_request_id(list(message.get("headers", [])), request_id)
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
        if method in MUTATING and scope.get("state", {}).get("principal") is not None:
            # Only authenticated callers' mutations: failed authentications are counted and audited per client
            # address by `serve.auth_failures`, and an anonymous request refused before authentication (unknown
            # route, wrong method, oversize or malformed body) touched nothing, so a flood of either cannot
            # write a row per request.
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(_audit, ctx, scope, method, route, status)


class ProxyRequestIdMiddleware:
    """The request-id rule of `ApiMiddleware`, applied in Ray Serve's HTTP proxy around Serve's own
    `RequestIdMiddleware` (which echoes whatever `X-Request-Id` a client sent and adds a second header to the
    app's): an unsafe client id is replaced before Serve reads it, and the response leaves with one header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope = {**scope, "headers": with_request_id(list(scope.get("headers", [])), request_id)}
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_one(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_request_id(list(message.get("headers", [])), request_id)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_one)


#: The import path Ray Serve's proxy calls for extra middlewares (given in RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH).
PROXY_CALLBACK = "serve.middleware.proxy_middlewares"


def proxy_middlewares() -> list[Any]:
    """The middlewares Ray Serve's HTTP proxy wraps itself in (called by the proxy through `PROXY_CALLBACK`)."""
    from starlette.middleware import Middleware

    return [Middleware(ProxyRequestIdMiddleware)]


def _audit(ctx: Any, scope: Scope, method: str, route: str, status: int) -> None:
    state = scope.get("state", {})
    principal = state["principal"]
    outcome = "ok" if status < 400 else ("denied" if status in (403, 429) else "error")
    target = dict(scope.get("path_params") or {})
    resource_type = route.split("/")[2] if route.startswith("/v1/") and route.count("/") >= 2 else route
    try:
        ctx.store.audit.append(
            principal.actor,
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
