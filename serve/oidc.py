"""OIDC bearer tokens: verify a JWT against the issuer's JWKS and read the user name and scopes from it.

Only `serve.auth` calls this module; it knows nothing about the store or HTTP responses. Every failure raises
`OidcTokenError` whose message says why the token was refused and never contains the token itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

#: Asymmetric algorithms only: `none` and HS* would let anyone holding the public key forge tokens.
ALLOWED_ALGORITHMS = ("RS256", "ES256")

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class OidcTokenError(PermissionError):
    """A bearer token that looks like a JWT was refused; the message names the reason, never the token."""


class JwksCache:
    """The issuer's signing keys with the time they were fetched; shared by all requests of one server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jwks_url: str | None = None
        self.keys: dict[str, Any] = {}
        self.fetched_at: float | None = None


@dataclass(frozen=True)
class OidcConfig:
    """How to accept OIDC tokens: built by the entry point and passed in `ServeOptions.oidc`.

    `issuer` must equal the tokens' `iss`; `audience` their `aud`. `jwks_url` defaults to the `jwks_uri` of
    `{issuer}/.well-known/openid-configuration`. `username_claim` names the user (default `sub`);
    `scopes_claim` lists scopes (a space-separated string or a list); `scope_map` renames token scopes to
    rayweave scopes (unmapped scopes are kept as they are and ignored unless they are rayweave scopes).
    `jwks_ttl_s` is how long fetched keys are trusted before refetching; `leeway_s` tolerates clock skew on
    `exp`/`nbf`/`iat`.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    username_claim: str = "sub"
    scopes_claim: str = "scope"
    scope_map: Mapping[str, str] = field(default_factory=dict)
    jwks_ttl_s: float = 300.0
    leeway_s: float = 30.0
    http_timeout_s: float = 5.0
    cache: JwksCache = field(default_factory=JwksCache, compare=False, repr=False)


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified token says: the user name and the rayweave scopes it grants."""

    username: str
    scopes: frozenset[str]
    issuer: str


def looks_like_jwt(secret: str) -> bool:
    """Whether a bearer secret has the shape of a JWT (three base64url segments) rather than an API key."""
    return not secret.startswith("rw_") and bool(_JWT_SHAPE.match(secret))


def verify_token(config: OidcConfig, token: str) -> OidcIdentity:
    """Verify `token` (signature, algorithm, `iss`, `aud`, `exp`, `nbf`) and return its identity."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise OidcTokenError("OIDC token has a malformed header") from None
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise OidcTokenError(
            f"OIDC token algorithm {alg!r} is not allowed; use one of {list(ALLOWED_ALGORITHMS)}"
        )
    kid = header.get("kid")
    key = _signing_key(config, kid if isinstance(kid, str) else None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway_s,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise OidcTokenError("OIDC token has expired; get a new token from the issuer") from None
    except jwt.ImmatureSignatureError:
        raise OidcTokenError("OIDC token is not valid yet (nbf/iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise OidcTokenError(f"OIDC token audience is not {config.audience!r}") from None
    except jwt.InvalidIssuerError:
        raise OidcTokenError(f"OIDC token issuer is not {config.issuer!r}") from None
    except jwt.InvalidSignatureError:
        raise OidcTokenError("OIDC token signature does not verify against the issuer's keys") from None
    except jwt.MissingRequiredClaimError as exc:
        raise OidcTokenError(f"OIDC token lacks the required claim {exc.claim!r}") from None
    except jwt.PyJWTError as exc:
        raise OidcTokenError(f"OIDC token is invalid ({type(exc).__name__})") from None
    username = claims.get(config.username_claim)
    if not isinstance(username, str) or not username:
        raise OidcTokenError(f"OIDC token lacks the user claim {config.username_claim!r}")
    return OidcIdentity(username=username, scopes=_scopes(config, claims), issuer=config.issuer)


def _scopes(config: OidcConfig, claims: Mapping[str, Any]) -> frozenset[str]:
    raw = claims.get(config.scopes_claim, "")
    names = raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
    return frozenset(config.scope_map.get(name, name) for name in names)


def _signing_key(config: OidcConfig, kid: str | None) -> Any:
    """The key for `kid`: from the cache while fresh; an unknown kid forces one refetch (key rotation)."""
    cache = config.cache
    with cache.lock:
        stale = cache.fetched_at is None or time.monotonic() - cache.fetched_at > config.jwks_ttl_s
        if stale:
            _refresh(config)
        key = _pick(cache, kid)
        if key is None and not stale:
            _refresh(config)
            key = _pick(cache, kid)
    if key is None:
        raise OidcTokenError(f"OIDC token key id {kid!r} is not among the issuer's signing keys")
    return key


def _pick(cache: JwksCache, kid: str | None) -> Any:
    if kid is None:
        # A token without kid is acceptable only when the issuer publishes exactly one key.
        return next(iter(cache.keys.values())) if len(cache.keys) == 1 else None
    return cache.keys.get(kid)


def _refresh(config: OidcConfig) -> None:
    cache = config.cache
    try:
        if cache.jwks_url is None:
            cache.jwks_url = config.jwks_url or _discover_jwks_url(config)
        response = httpx.get(cache.jwks_url, timeout=config.http_timeout_s)
        response.raise_for_status()
        keyset = jwt.PyJWKSet.from_dict(response.json())
    except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
        raise OidcTokenError(f"cannot fetch the OIDC issuer's signing keys ({type(exc).__name__})") from None
    cache.keys = {k.key_id or f"#{i}": k.key for i, k in enumerate(keyset.keys)}
    cache.fetched_at = time.monotonic()


def _discover_jwks_url(config: OidcConfig) -> str:
    url = config.issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = httpx.get(url, timeout=config.http_timeout_s)
    response.raise_for_status()
    jwks_uri = response.json().get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError("openid-configuration has no jwks_uri")
    return jwks_uri
