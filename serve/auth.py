"""Authentication and authorization, in one place.

Every protected route declares `Depends(require("scope"))`. The dependency reads `Authorization: Bearer <key>`,
verifies the key with the store (unknown, malformed, expired and revoked keys are all 401; a verified key is
remembered by this server for at most 0.5 s, `serve.key_cache`, so a revocation anywhere stops it within that) or, when
`ServeOptions.oidc` is set and the secret looks like a JWT, verifies it as an OIDC token (`serve.oidc`), checks the scope
(403), spends a token of the key's rate-limit bucket (429) and returns the `Principal`. What a caller may do is
its role's permissions narrowed by its key's scopes (`serve.policy`, data in `serve/policy.toml`): the key, its user
and the user's tenant and role are read in one joined query. Failed authentications
are counted per client address here (`serve.auth_failures`: past the address's budget they are 429, and their
audit is aggregated per address and window); successful mutations are audited by the middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from serve.auth_failures import client_key
from serve.context import ServerContext
from serve.deps import get_context
from serve.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from serve.oidc import OidcConfig, OidcTokenError, looks_like_jwt, verify_token
from serve.policy import SCOPES as SCOPES  # every scope; defined with the policy, re-exported here
from serve.policy import effective_scopes
from serve.ratelimit import Budget
from serve.sessions import check_csrf

if TYPE_CHECKING:
    from engine.store.shares import Audience

#: Shown in OpenAPI so /docs offers an "Authorize" button; the header itself is read in `authenticate`.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key (`Authorization: Bearer rw_...`) or, when configured, an OIDC token",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's user, the key, and what it may do (`scopes`: its role's permissions that the
    key's own scopes, `key_scopes`, cover; `serve.policy.effective_scopes`)."""

    user_id: str
    username: str
    key_id: str
    key_prefix: str
    scopes: frozenset[str]
    tenant_id: str = "default"
    role: str = "member"
    key_scopes: frozenset[str] = frozenset()

    @property
    def sees_tenant(self) -> bool:
        """Whether the principal's role sees every workflow and run of its tenant (owners and admins)."""
        from serve.policy import role

        return role(self.role).sees_tenant

    @property
    def audience(self) -> Audience:
        """The principal as the store's visibility filters take it."""
        from engine.store.shares import Audience

        return Audience(self.user_id, self.tenant_id, self.sees_tenant)

    @property
    def is_admin(self) -> bool:
        """Admin keys may do everything and see every owner's workflows and runs."""
        return "admin" in self.scopes or "*" in self.scopes

    def allows(self, scope: str) -> bool:
        """Whether the key's scopes cover `scope` (exact, `area:*`, `*` or `admin`)."""
        from engine.store.api_keys import scope_allows

        return self.is_admin or scope_allows(self.scopes, scope)

    def owns(self, owner: str) -> bool:
        """Whether a resource of `owner` is visible to this principal (tenancy)."""
        return self.is_admin or owner == self.user_id

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.key_prefix == "oidc":
            return f"{self.username} (OIDC)"
        return f"{self.username} (key {self.key_prefix})"


def _presented_secret(headers: Headers) -> str:
    value = headers.get("authorization")
    if not value and headers.get("cookie"):
        from starlette.requests import cookie_parser

        from serve.sessions import SESSION_COOKIE

        session = cookie_parser(headers["cookie"]).get(SESSION_COOKIE)
        if session:
            return session  # a browser session (serve.browser_login): an API key kept in an HttpOnly cookie
    if not value:
        raise UnauthorizedError(
            "no credentials; send `Authorization: Bearer <API key>` (the admin key is in $RAYWEAVE_HOME/admin.key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, secret = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError(
            "malformed Authorization header; use `Authorization: Bearer <API key>`",
            headers={"WWW-Authenticate": 'Bearer error="invalid_request"'},
        )
    return secret.strip()


def authenticate(
    ctx: ServerContext, headers: Headers, *, action: str, request_id: str = "", client: str | None = None
) -> Principal:
    """The principal of a request's headers. Otherwise raises `UnauthorizedError`, or `RateLimitedError` when
    the client address (`client`, the peer's host) failed too often; either way the failure is counted and
    audited per address (`serve.auth_failures`)."""
    guard = ctx.auth_failures
    try:
        principal = _principal(ctx, headers)
    except UnauthorizedError as exc:
        wait = guard.failed(client, reason=exc.detail, action=action, request_id=request_id)
        if wait > 0:
            retry = ctx.limiter.retry_after_header(wait)
            raise RateLimitedError(
                f"{exc.detail}; and too many failed authentications from {client_key(client)} "
                f"(more than {guard.limiter.burst} at once, {guard.limiter.rate_per_s:g}/s after that): "
                f"retry after {retry} s with valid credentials",
                headers={**exc.headers, "Retry-After": retry},
            ) from None
        raise
    guard.tick()
    return principal


def _principal(ctx: ServerContext, headers: Headers) -> Principal:
    from engine.store import InvalidApiKeyError, NotFoundError
    from engine.store.api_keys import hash_secret
    from engine.store.columns import utcnow

    secret = _presented_secret(headers)
    if ctx.options.oidc is not None and looks_like_jwt(secret):
        return _oidc_principal(ctx, ctx.options.oidc, secret)
    digest, now = hash_secret(secret), utcnow()
    known = ctx.verified_keys.get(digest, now)
    if known is not None:
        return known
    try:
        key, user = ctx.store.api_keys.verify_with_user(secret, now=now)
    except (InvalidApiKeyError, NotFoundError) as exc:
        raise UnauthorizedError(
            f"{exc}", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    principal = Principal(
        user_id=user.id,
        username=user.username,
        key_id=key.id,
        key_prefix=key.prefix,
        scopes=effective_scopes(user.role, key.scopes),
        tenant_id=user.tenant_id,
        role=user.role,
        key_scopes=frozenset(key.scopes),
    )
    ctx.verified_keys.put(digest, principal, expires_at=key.expires_at, revoked_at=key.revoked_at)
    return principal


def principal_for(ctx: Any, headers: Headers) -> Principal:
    """The principal of `headers` for a server that holds only `store`, `options` and `verified_keys` (a model
    replica's fast path, `serve.models.fastpath`): the same 401s as `authenticate`, without its per-address
    limit of failed authentications."""
    return _principal(ctx, headers)


def _oidc_principal(ctx: ServerContext, config: OidcConfig, token: str) -> Principal:
    """The principal of a verified OIDC token; its user (`oidc:<subject>`) is created in the store on first
    sight. The prefix is reserved (`engine.store.users.RESERVED_PREFIXES`): no local user can be created under
    it, so a subject never shares an account made by someone else."""
    from engine.store.users import OIDC_PREFIX

    try:
        identity = verify_token(config, token)
    except OidcTokenError as exc:
        raise UnauthorizedError(
            str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    user = ctx.store.users.ensure_external(OIDC_PREFIX, identity.username)
    if user.disabled:
        raise UnauthorizedError(
            f"user {user.username!r} is disabled; ask an administrator to enable it",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    token_scopes = identity.scopes & frozenset(SCOPES)
    return Principal(
        user_id=user.id,
        username=user.username,
        key_id=f"oidc:{user.id}",
        key_prefix="oidc",
        scopes=effective_scopes(user.role, token_scopes),
        tenant_id=user.tenant_id,
        role=user.role,
        key_scopes=token_scopes,
    )


def authorize(ctx: ServerContext, principal: Principal, scope: str, client: str | None = None) -> None:
    """Raise 403 when the principal lacks `scope` (its role does not grant it, or its key does not cover it),
    429 when its rate budget is spent."""
    if not principal.allows(scope):
        from serve.policy import role

        if scope != "admin" and scope not in role(principal.role).permissions:
            raise ForbiddenError(
                f"user {principal.username!r} has the role {principal.role!r} in tenant {principal.tenant_id!r}, "
                f"which does not grant {scope!r}; ask an owner or admin of the tenant for a role that does "
                f"(PUT /v1/users/{{user}}/role) — its role grants {sorted(role(principal.role).permissions)}"
            )
        if principal.key_prefix == "oidc":
            raise ForbiddenError(
                f"the OIDC token of {principal.username!r} lacks scope {scope!r}; ask the identity provider "
                f"for a token with it — it has {sorted(principal.scopes) or 'no scopes'}"
            )
        raise ForbiddenError(
            f"API key {principal.key_prefix!r} lacks scope {scope!r}; create a key with that scope "
            f"(POST /v1/keys) — it has {sorted(principal.scopes) or 'no scopes'}"
        )
    budgets = _budgets(ctx, principal, client)
    wait, index = ctx.limiter.take_all(budgets)
    if wait > 0:
        retry = ctx.limiter.retry_after_header(wait)
        budget = budgets[index]
        who = {
            "key": f"API key {principal.key_prefix!r}",
            "user": f"user {principal.username!r} (all their keys together)",
            "address": f"client address {client_key(client)}",
        }[budget.what]
        raise RateLimitedError(
            f"{who} exceeded {budget.rate_per_s:g} requests/s (burst {budget.burst}); retry after {retry} s",
            headers={"Retry-After": retry},
        )


def _budgets(ctx: ServerContext, principal: Principal, client: str | None) -> list[Budget]:
    """The buckets a request spends from: its key's, and its user's and its address's when configured."""
    budgets = [Budget(principal.key_id, ctx.limiter.rate_per_s, ctx.limiter.burst, "key")]
    options = ctx.options
    if options.user_rate_per_s is not None:
        budgets.append(
            Budget(f"user:{principal.user_id}", options.user_rate_per_s, options.user_burst, "user")
        )
    if options.address_rate_per_s is not None:
        budgets.append(
            Budget(f"addr:{client_key(client)}", options.address_rate_per_s, options.address_burst, "address")
        )
    return budgets


def require(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and demands `scope`; returns the `Principal`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes are {SCOPES}")

    def dependency(request: Request, _bearer: object = Depends(bearer_scheme)) -> Principal:
        ctx = get_context(request)
        check_csrf(request)  # only requests signed in by the browser session cookie
        action = f"{request.method} {request.url.path}"
        principal = authenticate(
            ctx, request.headers, action=action, request_id=_rid(request), client=client_host(request)
        )
        request.state.principal = principal
        authorize(ctx, principal, scope, client_host(request))
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def check_scopes(requested: Collection[str]) -> list[str]:
    """Validate scope names given by a client; raises `ValueError` naming the unknown ones."""
    unknown = sorted(set(requested) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; scopes are {list(SCOPES)}")
    return sorted(set(requested))


def client_host(connection: HTTPConnection) -> str | None:
    """The peer address of a request or WebSocket (behind a proxy: the proxy's, unless the server is told to
    trust its forwarded headers)."""
    return connection.client.host if connection.client is not None else None


def _rid(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))
