"""The fast path: an HTTP server inside each replica of a model deployment (docs/adr/014).

Every replica of a model binds the model's port on loopback with `SO_REUSEPORT`, so the kernel spreads
connections over the replicas Serve keeps alive; Serve still starts, health-checks, replaces and scales the
replicas. The server runs on the replica's own event loop (the one its methods run on), so its requests join
the same `@serve.batch` queue as handle calls. It answers the Open Inference Protocol routes of this one model
behind the API's keys and scopes (`models:read` for metadata and readiness, `models:infer` for predictions):
a key verified here is remembered for at most 0.5 s, like on the API servers (`serve.key_cache`). It is a
plain ASGI callable under uvicorn, without a framework: the point is the shortest path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serve.key_cache import VerifiedKeys

if TYPE_CHECKING:
    from serve.models.replica import ModelReplica, ModelSpec

#: The largest prediction body the fast path reads.
MAX_BODY_BYTES = 32 * 1024 * 1024

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class _AuthContext:
    """What `serve.auth.principal_for` needs of a server: the store, OIDC options and recently verified keys."""

    store: Any
    options: Any
    verified_keys: VerifiedKeys = field(default_factory=VerifiedKeys)


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` that other replicas of the same model may bind too."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (for a new model's fast path)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_fast_path(replica: ModelReplica, spec: ModelSpec) -> Any:
    """Start the replica's fast-path server on the running loop; returns the uvicorn server."""
    import uvicorn

    from engine.store import open_store
    from serve.config import ServeOptions

    auth = _AuthContext(open_store(spec.database_url), ServeOptions(oidc=spec.oidc))
    app = FastPathApp(replica, auth)
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, http="httptools", timeout_keep_alive=60
    )
    server = _QuietServer(config)
    sock = reuseport_socket(spec.host, spec.port)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    server.rayweave_task = task
    for _ in range(200):  # until it accepts (or failed)
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done() and task.exception() is not None:
        raise RuntimeError(f"the fast path of model {spec.name!r} could not start on {spec.endpoint}") from (
            task.exception()
        )
    return server


class _QuietServer:
    """uvicorn's server without its signal handlers (the replica's process belongs to Ray)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(config)


class FastPathApp:
    """The ASGI app of one model's fast path (see the module docstring)."""

    def __init__(self, replica: ModelReplica, auth: _AuthContext) -> None:
        self.replica = replica
        self.auth = auth
        self.name = replica.spec.name
        self.prefix = f"/v2/models/{self.name}"

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Route one request."""
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path in ("/v2/health/live", "/v2/health/ready"):
            key = "live" if path.endswith("live") else "ready"
            return await _json(send, 200, {key: True})
        if path == self.prefix + "/infer" and method == "POST":
            return await self._infer(scope, receive, send)
        if path in (self.prefix, self.prefix + "/ready") and method == "GET":
            if not await self._allowed(scope, send, "models:read"):
                return None
            if path.endswith("/ready"):
                return await _json(send, 200, {"name": self.name, "ready": True})
            return await _json(send, 200, self.replica.metadata())
        if path.startswith("/v2/models/"):
            detail = f"this endpoint serves model {self.name!r} only (its routes are under {self.prefix})"
            return await _problem(send, 404, detail, "not-found", "Not found")
        return await _problem(send, 404, f"no route {method} {path}", "not-found", "Not found")

    async def _infer(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if not await self._allowed(scope, send, "models:infer"):
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return await _problem(
                    send,
                    413,
                    f"the body is larger than {MAX_BODY_BYTES} bytes; send fewer rows per request",
                    "payload-too-large",
                    "Request body too large",
                )
            chunks.append(chunk)
            more = message.get("more_body", False)
        content_type = _header(scope, b"content-type")
        status, media, body = await self.replica.infer(b"".join(chunks), content_type)
        await _send(send, status, media, body)

    async def _allowed(self, scope: dict[str, Any], send: Send, scope_name: str) -> bool:
        from starlette.datastructures import Headers

        from serve.auth import principal_for
        from serve.errors import ApiError

        try:
            principal = principal_for(self.auth, Headers(scope=scope))
        except ApiError as exc:
            await _problem(send, exc.status, exc.detail, exc.slug, exc.title, exc.headers)
            return False
        if not principal.allows(scope_name):
            detail = (
                f"API key {principal.key_prefix!r} lacks scope {scope_name!r}; create a key with that scope "
                f"(POST /v1/keys) — it has {sorted(principal.scopes) or 'no scopes'}"
            )
            await _problem(send, 403, detail, "forbidden", "Missing scope")
            return False
        return True


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _send(
    send: Send, status: int, media: str, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, doc: Any) -> None:
    await _send(send, status, "application/json", json.dumps(doc).encode())


async def _problem(
    send: Send, status: int, detail: str, slug: str, title: str, headers: dict[str, str] | None = None
) -> None:
    from serve.problems import problem_body

    body = json.dumps(problem_body(status, detail, slug=slug, title=title)).encode()
    await _send(send, status, "application/problem+json", body, headers)
