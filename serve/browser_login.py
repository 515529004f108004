"""Browser sign-in with OpenID Connect: the authorization code flow with PKCE, session cookies, CSRF, sign-out.

For the web UI (and any browser): `GET /auth/login` sends the browser to the identity provider with a PKCE code
challenge (S256), a `state` and a `nonce`, kept in a short-lived HttpOnly cookie; `GET /auth/callback` checks the
state, exchanges the code with the verifier (Authlib's OAuth2 client), verifies the ID token (signature, issuer,
audience = the client id, expiry, nonce; `serve.oidc`), maps the user's groups to rayweave scopes, and opens a
session.

A session is an API key of the user (`oidc:<subject>`), named `browser session`, expiring with the session and
carrying the scopes the groups grant; its secret is the session cookie (HttpOnly, Secure, SameSite=Lax), so it
is never readable by page scripts, and everything keys have applies to sessions: revocation on every replica
within a second, last-used times, audit. `POST /auth/logout` revokes it. A second cookie holds a random CSRF
token that pages read and send back as `X-CSRF-Token` on every unsafe request (POST, PUT, PATCH, DELETE)
authenticated by the session cookie (double submit); WebSockets authenticated by the cookie must come from the
server's own origin. Requests with an `Authorization` header are not affected by any of this.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from serve.auth import SCOPES, authenticate, client_host
from serve.errors import (
    ApiError,
    BadRequestError,
    ForbiddenError,
    NotImplementedFeatureError,
    UnauthorizedError,
)
from serve.sessions import (
    CSRF_COOKIE,
    LOGIN_COOKIE,
    LOGIN_TTL_S,
    SESSION_COOKIE,
    SESSION_KEY_NAME,
    BrowserLogin,
    check_csrf,
)

if TYPE_CHECKING:
    from serve.context import ServerContext
    from serve.oidc import OidcConfig


class IdentityProviderError(ApiError, RuntimeError):
    """The identity provider could not be reached or did not issue tokens."""

    status, slug, title = 502, "identity-provider", "Identity provider error"


router = APIRouter(prefix="/auth", tags=["auth"])


def _setup(request: Request) -> tuple[ServerContext, BrowserLogin, OidcConfig]:
    ctx: ServerContext = request.app.state.rayweave
    login, oidc = ctx.options.browser_login, ctx.options.oidc
    if login is None or oidc is None:
        raise NotImplementedFeatureError(
            "browser sign-in is not configured on this server (RAYWEAVE_OIDC_ISSUER and RAYWEAVE_OIDC_CLIENT_ID); "
            "use an API key"
        )
    return ctx, login, oidc


def _discovery(oidc: OidcConfig, timeout_s: float) -> dict[str, Any]:
    import httpx

    url = oidc.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=timeout_s)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        document["authorization_endpoint"], document["token_endpoint"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise IdentityProviderError(
            f"the identity provider's discovery document ({url}) could not be read ({type(exc).__name__}); "
            "check RAYWEAVE_OIDC_ISSUER"
        ) from None
    return document


def _client(login: BrowserLogin) -> Any:
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(
        client_id=login.client_id,
        client_secret=login.client_secret,
        scope=login.scopes,
        redirect_uri=login.redirect_url,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post" if login.client_secret else "none",
        timeout=login.http_timeout_s,
    )


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _cookie(response: Response, login: BrowserLogin, name: str, value: str, **options: Any) -> None:
    response.set_cookie(name, value, secure=login.secure_cookies, **options)


@router.get("/login", summary="Sign in with the identity provider (browser)", include_in_schema=False)
def login(request: Request, next: str | None = None) -> Response:
    """Redirect to the identity provider's authorization endpoint (code flow with PKCE)."""
    from authlib.common.security import generate_token

    _ctx, config, oidc = _setup(request)
    endpoints = _discovery(oidc, config.http_timeout_s)
    state, verifier, nonce = generate_token(32), generate_token(64), generate_token(32)
    url, _ = _client(config).create_authorization_url(
        endpoints["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
    )
    flow = {"state": state, "verifier": verifier, "nonce": nonce, "next": _safe_next(next), "at": time.time()}
    response = RedirectResponse(url, status_code=302)
    _cookie(
        response,
        config,
        LOGIN_COOKIE,
        base64.urlsafe_b64encode(json.dumps(flow).encode()).decode(),
        httponly=True,
        samesite="lax",
        max_age=LOGIN_TTL_S,
        path="/auth",
    )
    return response


def _flow(request: Request, state: str | None) -> dict[str, Any]:
    """The sign-in under way in this browser (its login cookie), checked against the `state` sent back; a
    missing, malformed, expired or foreign one is a 400 (the cookie is the browser's: anything may be in it)."""
    raw = request.cookies.get(LOGIN_COOKIE)
    flow: Any = None
    with contextlib.suppress(ValueError, TypeError):
        flow = json.loads(base64.urlsafe_b64decode(raw or ""))
    started = flow.get("at") if isinstance(flow, dict) else None
    if not isinstance(started, int | float) or not 0 <= time.time() - started <= LOGIN_TTL_S:
        raise BadRequestError(
            "no sign-in is under way in this browser (or it took too long); start again at /auth/login"
        )
    assert isinstance(flow, dict)
    if not state or not _same(flow.get("state"), state):
        raise BadRequestError("the sign-in's state does not match this browser's; start again at /auth/login")
    if not all(isinstance(flow.get(key), str) for key in ("verifier", "nonce", "next")):
        raise BadRequestError("this browser's sign-in is damaged; start again at /auth/login")
    return flow


def _same(value: Any, expected: str) -> bool:
    """Whether `value` is the string `expected`, compared in constant time (any characters)."""
    return isinstance(value, str) and hmac.compare_digest(value.encode(), expected.encode())


def _scopes_of(
    config: BrowserLogin, oidc: OidcConfig, claims: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    raw = claims.get(config.groups_claim, [])
    groups = [raw] if isinstance(raw, str) else [str(g) for g in raw] if isinstance(raw, list) else []
    granted = {scope for group in groups for scope in config.group_scopes.get(group, ())}
    return sorted(granted & set(SCOPES)), groups


@router.get("/callback", summary="The identity provider's redirect back (browser)", include_in_schema=False)
def callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    """Finish the sign-in: check state and nonce, exchange the code with the PKCE verifier, open a session."""
    from engine.store.columns import utcnow
    from engine.store.users import OIDC_PREFIX
    from serve.oidc import OidcTokenError, verify_claims

    ctx, config, oidc = _setup(request)
    if error:
        raise BadRequestError(
            f"the identity provider refused the sign-in ({error[:100]}); start again at /auth/login"
        )
    flow = _flow(request, state)
    if not code:
        raise BadRequestError("the identity provider sent no code; start again at /auth/login")
    endpoints = _discovery(oidc, config.http_timeout_s)
    from authlib.integrations.base_client import OAuthError

    try:
        with _client(config) as client:
            token = client.fetch_token(endpoints["token_endpoint"], code=code, code_verifier=flow["verifier"])
        id_token = str(token["id_token"])
    except OAuthError as exc:  # the provider refused the code: the browser's input (400), not a failure
        raise BadRequestError(
            f"the identity provider refused the sign-in's code ({str(exc.error)[:100]}); start again at /auth/login"
        ) from None
    except Exception as exc:  # transport errors, a token answer without an id_token
        raise IdentityProviderError(
            f"the identity provider did not issue an ID token for the code ({type(exc).__name__}: "
            f"{str(exc)[:200]}); start again at /auth/login"
        ) from None
    try:
        claims = verify_claims(replace(oidc, audience=config.client_id), id_token)
    except OidcTokenError as exc:
        raise UnauthorizedError(f"the ID token was refused: {exc}") from None
    if not _same(claims.get("nonce"), flow["nonce"]):
        raise UnauthorizedError("the ID token's nonce is not this sign-in's; start again at /auth/login")
    subject = claims.get(oidc.username_claim)
    if not isinstance(subject, str) or not subject:
        raise UnauthorizedError(f"the ID token lacks the user claim {oidc.username_claim!r}")
    scopes, groups = _scopes_of(config, oidc, claims)
    if not scopes:
        raise ForbiddenError(
            f"the groups of {subject!r} ({', '.join(groups) or 'none'}) grant no access to rayweave; ask an "
            "administrator to map one of them to scopes (RAYWEAVE_OIDC_GROUP_SCOPES)"
        )
    user = ctx.store.users.ensure_external(OIDC_PREFIX, subject)
    if user.disabled:
        raise ForbiddenError(f"user {user.username!r} is disabled")
    key, secret = ctx.store.api_keys.create(
        user.id,
        name=SESSION_KEY_NAME,
        scopes=scopes,
        expires_at=utcnow() + timedelta(seconds=config.session_ttl_s),
    )
    ctx.store.audit.append(
        f"{user.username} (OIDC)",
        "auth.sign-in",
        resource_type="sessions",
        resource_id=key.prefix,
        details={
            "groups": groups[:20],
            "scopes": scopes,
            "request_id": getattr(request.state, "request_id", ""),
        },
    )
    response = RedirectResponse(_safe_next(flow["next"]), status_code=302)
    ttl = int(config.session_ttl_s)
    _cookie(response, config, SESSION_COOKIE, secret, httponly=True, samesite="lax", max_age=ttl, path="/")
    _cookie(
        response,
        config,
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        httponly=False,
        samesite="strict",
        max_age=ttl,
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/auth", secure=config.secure_cookies, httponly=True)
    return response


@router.post("/logout", status_code=204, summary="Sign out (browser)", include_in_schema=False)
def logout(request: Request) -> Response:
    """End the browser session: its key is revoked (on every replica within a second), its cookies cleared."""
    from engine.store import NotFoundError

    ctx, config, _oidc = _setup(request)
    if SESSION_COOKIE not in request.cookies:
        raise UnauthorizedError("not signed in")
    check_csrf(request)
    principal = authenticate(ctx, request.headers, action="POST /auth/logout", client=client_host(request))
    if principal.key_prefix != "oidc":
        with contextlib.suppress(NotFoundError):  # revoked meanwhile: the session is over either way
            ctx.store.api_keys.revoke(principal.key_id)
    ctx.store.audit.append(
        principal.actor, "auth.sign-out", resource_type="sessions", resource_id=principal.key_prefix
    )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=config.secure_cookies, httponly=True)
    response.delete_cookie(CSRF_COOKIE, path="/", secure=config.secure_cookies)
    return response


@router.get("/session", summary="The signed-in browser session", include_in_schema=False)
def session(request: Request) -> dict[str, Any]:
    """Who is signed in with the session cookie, with which scopes, and the header to send the CSRF token in."""

    ctx, _config, _oidc = _setup(request)
    if SESSION_COOKIE not in request.cookies:
        raise UnauthorizedError("not signed in; start at /auth/login")
    principal = authenticate(ctx, request.headers, action="GET /auth/session", client=client_host(request))
    return {"username": principal.username, "scopes": sorted(principal.scopes), "csrf_header": "X-CSRF-Token"}
