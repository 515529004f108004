"""`/ui`: the web UI's page and assets, and its sign-in with an API key.

The page is a single-page app: `/ui/` and every other `/ui/...` path that is not a file of the bundle answer with
`index.html` (the page routes on the client), never cached, so a new build is picked up at the next load; the
hashed files under `/ui/assets/` are immutable and cached for a year, and sent gzip-compressed to a browser that
accepts it (compressed once per file and kept: the bundle's JavaScript is about a quarter of its size gzipped,
elkjs's 1.6 MB worker 464 KB). Without a built bundle, `/ui` answers 503 with a page that says how to build it.

Sign-in: `POST /ui/api/session` with `{"api_key": ...}` checks the key and opens a browser session the same
way the OIDC login does (`serve.browser_login`): the key goes into the HttpOnly `rw_session` cookie (a cookie of
the browser session, without an expiry: it goes when the browser closes; page scripts never see it) with a CSRF
cookie that pages echo in `X-CSRF-Token` (`serve.sessions`). Every API route and WebSocket then authenticates
the page by that cookie, with the CSRF and same-origin checks sessions already have. `DELETE /ui/api/session`
signs out (it clears the cookies; a session opened by the OIDC login also has its key revoked, as
`POST /auth/logout` does). `GET /ui/api/session` tells the page who is signed in.
"""

from __future__ import annotations

import contextlib
import gzip
import mimetypes
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers

from serve.compression import accepts_gzip
from serve.errors import ForbiddenError, NotFoundError, UnauthorizedError
from serve.sessions import CSRF_COOKIE, SESSION_COOKIE, SESSION_KEY_NAME, check_csrf

#: Where the build puts the bundle (vite's outDir, serve/ui/web/vite.config.ts); shipped as package data.
BUNDLE_DIR = Path(__file__).resolve().parent / "dist"

#: The hashed assets of a build never change under their name.
IMMUTABLE = "public, max-age=31536000, immutable"
#: The page itself is revalidated at every load, so a new build is seen at once.
NO_CACHE = "no-cache"
#: What the page may load and connect to: this server only (`'self'` covers its WebSockets too).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": NO_CACHE,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rayweave: web UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>The web UI is not built</h1>
<p>This server has no web UI bundle in <code>serve/ui/dist</code>. Build it from the repository with
<code>make ui</code> (it runs <code>npm ci</code> and <code>npm run build</code> in <code>serve/ui/web</code>;
Node.js 20 and npm are needed), then reload this page. The HTTP API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


class SignIn(BaseModel):
    """The sign-in form of the page."""

    api_key: str = Field(min_length=1, max_length=4096, description="An API key (`rw_...`).")


def _secure(request: Request) -> bool:
    """Cookies are Secure over HTTPS; over plain HTTP (a development server on loopback) they could not be set."""
    return request.url.scheme == "https"


def _same_origin(request: Request) -> None:
    """Refuse a sign-in posted from another site (login CSRF: it would sign the browser in as someone else)."""
    origin = request.headers.get("origin", "")
    if not origin or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise ForbiddenError(
            "sign-in refused: it must be posted by this server's own page (Origin must match Host)"
        )


def _session_key_name(ctx: Any, key_id: str) -> str | None:
    from engine.store import NotFoundError as StoreNotFound

    try:
        return str(ctx.store.api_keys.get(key_id).name)
    except StoreNotFound:
        return None


def bundle_of(request: Request) -> Path:
    """The bundle directory this app serves (`app.state.ui_bundle`, set by `mount_ui`)."""
    return Path(getattr(request.app.state, "ui_bundle", BUNDLE_DIR))


def build_router() -> APIRouter:
    """The `/ui` routes serving the bundle of the app (`bundle_of`: a directory with `index.html`, `assets/`)."""
    from serve.auth import authenticate, client_host

    router = APIRouter(prefix="/ui", include_in_schema=False)

    @router.get("/api/session")
    def get_session(request: Request) -> dict[str, Any]:
        """Who is signed in (`signed_in` false without a session) and whether OIDC sign-in is offered."""
        ctx = request.app.state.rayweave
        oidc = ctx.options.browser_login is not None and ctx.options.oidc is not None
        if SESSION_COOKIE not in request.cookies:
            return {"signed_in": False, "oidc_login": oidc}
        headers = Headers({"cookie": request.headers.get("cookie", "")})
        try:
            principal = authenticate(ctx, headers, action="GET /ui/api/session", client=client_host(request))
        except UnauthorizedError:
            return {"signed_in": False, "oidc_login": oidc}
        browser = (
            principal.key_prefix == "oidc" or _session_key_name(ctx, principal.key_id) == SESSION_KEY_NAME
        )
        return {
            "signed_in": True,
            "username": principal.username,
            "scopes": sorted(principal.scopes),
            "kind": "oidc" if browser else "api-key",
            "oidc_login": oidc,
        }

    @router.post("/api/session", status_code=204)
    def sign_in(body: SignIn, request: Request) -> Response:
        """Check the key and keep it in the HttpOnly session cookie for this browser session."""
        ctx = request.app.state.rayweave
        _same_origin(request)
        key = body.api_key.strip()
        principal = authenticate(
            ctx,
            Headers({"authorization": f"Bearer {key}"}),
            action="POST /ui/api/session",
            client=client_host(request),
        )
        ctx.store.audit.append(
            principal.actor,
            "auth.sign-in",
            resource_type="sessions",
            resource_id=principal.key_prefix,
            details={"via": "web UI API key", "request_id": getattr(request.state, "request_id", "")},
        )
        response = Response(status_code=204)
        secure = _secure(request)
        # No max_age: cookies of the browser session only. SameSite=Strict: no other site's page sends them.
        response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/")
        response.set_cookie(
            CSRF_COOKIE, secrets.token_urlsafe(32), httponly=False, samesite="strict", secure=secure, path="/"
        )
        return response

    @router.delete("/api/session", status_code=204)
    def sign_out(request: Request) -> Response:
        """Clear the session cookies; a session the OIDC login opened also has its key revoked."""
        from engine.store import NotFoundError as StoreNotFound

        ctx = request.app.state.rayweave
        if SESSION_COOKIE in request.cookies:
            check_csrf(request)
            headers = Headers({"cookie": request.headers.get("cookie", "")})
            with contextlib.suppress(UnauthorizedError):
                principal = authenticate(
                    ctx, headers, action="DELETE /ui/api/session", client=client_host(request)
                )
                if (
                    principal.key_prefix != "oidc"
                    and _session_key_name(ctx, principal.key_id) == SESSION_KEY_NAME
                ):
                    with contextlib.suppress(StoreNotFound):
                        ctx.store.api_keys.revoke(principal.key_id)
                ctx.store.audit.append(
                    principal.actor,
                    "auth.sign-out",
                    resource_type="sessions",
                    resource_id=principal.key_prefix,
                )
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True)
        response.delete_cookie(CSRF_COOKIE, path="/", secure=_secure(request))
        return response

    @router.get("/assets/{name:path}")
    def asset(name: str, request: Request) -> Response:
        """A hashed file of the build: cached for a year (its name changes when its content does)."""
        path = _inside(bundle_of(request) / "assets", name)
        if path is None:
            raise NotFoundError(
                f"no web UI asset {name!r}; reload the page (a newer build may have replaced it)"
            )
        return _asset_response(request, path)

    @router.get("/{rest:path}")
    def page(rest: str, request: Request) -> Response:
        """A file at the bundle's top level, or else the page itself (the app routes `/ui/...` on the client)."""
        if rest.startswith("api/"):
            raise NotFoundError(f"no web UI route /ui/{rest}")
        bundle = bundle_of(request)
        index = bundle / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        if rest and "/" not in rest and rest != "index.html":
            path = _inside(bundle, rest)
            if path is not None:
                return FileResponse(
                    path, headers={"Cache-Control": NO_CACHE, "X-Content-Type-Options": "nosniff"}
                )
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    return router


#: Assets sent gzip-compressed (text; images and fonts of the bundle are compressed already or tiny).
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".svg", ".json", ".map", ".html", ".txt"})
#: Files smaller than this are sent as they are (compressing gains less than the header costs).
MIN_GZIP_BYTES = 1024
#: At most this much compressed output is kept per app (the bundle's is about 0.7 MB).
MAX_GZIP_CACHE_BYTES = 32 * 1024 * 1024


def _asset_response(request: Request, path: Path) -> Response:
    """A hashed asset, immutable; gzip-compressed when it is text and the browser accepts gzip."""
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    if path.suffix in COMPRESSIBLE and _accepts_gzip(request):
        body = _gzipped(request.app, path)
        if body is not None:
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return Response(body, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(path, headers=headers)


def _accepts_gzip(request: Request) -> bool:
    """Whether the request's Accept-Encoding allows gzip (a `q=0` refuses it)."""
    return accepts_gzip(request.headers.get("accept-encoding", ""))


class _GzipCache:
    """An app's gzip-compressed assets, by path, size and modification time (a new build has new names)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: dict[tuple[str, int, int], bytes] = {}
        self.size = 0


def _gzipped(app: Any, path: Path) -> bytes | None:
    """`path`'s content gzip-compressed, compressed at the first request and kept on `app.state`; None for a
    small file (sent as it is)."""
    stat = path.stat()
    if stat.st_size < MIN_GZIP_BYTES:
        return None
    cache = getattr(app.state, "ui_gzip", None)
    if cache is None:
        cache = app.state.ui_gzip = _GzipCache()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with cache.lock:
        body = cache.bodies.get(key)
    if body is None:
        # mtime 0: the same bytes for the same file, whichever replica compressed it.
        body = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
        with cache.lock:
            if cache.size + len(body) <= MAX_GZIP_CACHE_BYTES:
                cache.bodies[key] = body
                cache.size += len(body)
    return body


def _inside(root: Path, name: str) -> Path | None:
    """The file `name` under `root`, or None (also for names that would leave `root`)."""
    try:
        base = root.resolve()
        path = (base / name).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def mount_ui(app: FastAPI, bundle: Path | None = None) -> None:
    """Serve the web UI under `/ui` from `bundle` (default `BUNDLE_DIR`; tests and embedders may point
    `app.state.ui_bundle` elsewhere later); `/ui` itself redirects to `/ui/`."""
    app.state.ui_bundle = bundle or BUNDLE_DIR
    app.state.ui_gzip = _GzipCache()
    app.add_api_route(
        "/ui", lambda: RedirectResponse("/ui/", status_code=308), methods=["GET"], include_in_schema=False
    )
    app.include_router(build_router())
