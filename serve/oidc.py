"""OIDC bearer tokens: verify a JWT against the issuer's JWKS and read the user name and scopes from it.

Only `serve.auth` calls this module; it knows nothing about the store or HTTP responses. Every failure raises
`OidcTokenError` whose message says why the token was refused and never contains the token itself: whatever a
caller sends (malformed, wrong algorithm or key type, expired, foreign issuer, unknown key id, garbage) is a
refusal, never an unexpected exception.

The issuer's keys are cached (`JwksCache`). Verifying with a known key never waits for a fetch: a stale key set
is refreshed by a background thread while the known keys keep serving. A token naming an unknown `kid` (a key
rotation, or an attacker's invention) refetches the key set at most once per `jwks_refetch_floor_s`, by the one
request that finds the floor passed; every other unknown-kid token is refused at once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import jwt

log = logging.getLogger("rayweave.serve")

#: Asymmetric algorithms only: `none` and HS* would let anyone holding the public key forge tokens.
ALLOWED_ALGORITHMS = ("RS256", "ES256")

#: The longest user claim accepted: the user is named `oidc:<claim>` and user names hold 200 characters.
MAX_USERNAME_CLAIM = 190

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class OidcTokenError(PermissionError):
    """A bearer token that looks like a JWT was refused; the message names the reason, never the token."""


class JwksCache:
    """The issuer's signing keys and when they were fetched; shared by all requests of one server.

    `keys` is replaced whole by a fetch and never changed in place, so requests read it without a lock; the
    lock is held only by the one thread fetching (and by no request verifying with a known key).
    """

    def __init__(self) -> None:
        self.fetch_lock = threading.Lock()
        self.jwks_url: str | None = None
        self.keys: Mapping[str, jwt.PyJWK] = MappingProxyType({})
        #: When the keys were last fetched successfully (monotonic seconds); None before the first fetch.
        self.fetched_at: float | None = None
        #: When a fetch was last started, whether it succeeded or not: the refetch floor counts from here.
        self.attempted_at: float | None = None

    def __reduce__(self) -> tuple[type[JwksCache], tuple[()]]:
        # A lock does not pickle: a copy sent to another process (a Ray Serve replica) starts empty.
        return (JwksCache, ())


@dataclass(frozen=True)
class OidcConfig:
    """How to accept OIDC tokens: built by the entry point and passed in `ServeOptions.oidc`.

    `issuer` must equal the tokens' `iss`; `audience` their `aud`. `jwks_url` defaults to the `jwks_uri` of
    `{issuer}/.well-known/openid-configuration`. `username_claim` names the user (default `sub`);
    `scopes_claim` lists scopes (a space-separated string or a list); `scope_map` renames token scopes to
    rayweave scopes (unmapped scopes are kept as they are and ignored unless they are rayweave scopes).
    `jwks_ttl_s` is how long fetched keys are used before they are refreshed (in the background);
    `jwks_refetch_floor_s` is the least time between two fetches of the keys, so tokens with unknown key ids
    cannot make the server fetch more often than that; `leeway_s` tolerates clock skew on `exp`/`nbf`/`iat`.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    username_claim: str = "sub"
    scopes_claim: str = "scope"
    scope_map: Mapping[str, str] = field(default_factory=dict)
    jwks_ttl_s: float = 300.0
    jwks_refetch_floor_s: float = 30.0
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
    """Verify `token` (signature, algorithm, `iss`, `aud`, `exp`, `nbf`) and return its identity.

    Raises `OidcTokenError` for every token that is not accepted, whatever is wrong with it.
    """
    try:
        return _verify(config, token)
    except OidcTokenError:
        raise
    except Exception as exc:  # crafted tokens reach corners of the JWT library that raise TypeError & co.
        log.debug("OIDC token refused by an unexpected %s", type(exc).__name__)
        raise OidcTokenError(f"OIDC token is invalid ({type(exc).__name__})") from None


def verify_claims(config: OidcConfig, token: str) -> dict[str, Any]:
    """The claims of a verified `token` (as `verify_token` checks it), for callers that need more than the
    identity (the browser login's `nonce` and group claims). Raises `OidcTokenError` for any refusal."""
    try:
        return _claims(config, token)
    except OidcTokenError:
        raise
    except Exception as exc:  # as in verify_token
        log.debug("OIDC token refused by an unexpected %s", type(exc).__name__)
        raise OidcTokenError(f"OIDC token is invalid ({type(exc).__name__})") from None


def _verify(config: OidcConfig, token: str) -> OidcIdentity:
    claims = _claims(config, token)
    username = claims.get(config.username_claim)
    if not isinstance(username, str) or not username:
        raise OidcTokenError(f"OIDC token lacks the user claim {config.username_claim!r}")
    if len(username) > MAX_USERNAME_CLAIM:
        raise OidcTokenError(
            f"OIDC token's user claim {config.username_claim!r} is longer than {MAX_USERNAME_CLAIM} characters"
        )
    return OidcIdentity(username=username, scopes=_scopes(config, claims), issuer=config.issuer)


def _claims(config: OidcConfig, token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise OidcTokenError("OIDC token has a malformed header") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise OidcTokenError(
            f"OIDC token algorithm {alg!r} is not allowed; use one of {list(ALLOWED_ALGORITHMS)}"
        )
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise OidcTokenError("OIDC token header has a `kid` that is not a string")
    key = _signing_key(config, kid)
    if key.algorithm_name != alg:
        # Checked here, not left to the library: a key of one type given to another algorithm raised TypeError.
        raise OidcTokenError(
            f"OIDC token algorithm {alg!r} does not match the issuer's key {kid!r} "
            f"({key.key_type}, {key.algorithm_name})"
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
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
    return claims


def _scopes(config: OidcConfig, claims: Mapping[str, Any]) -> frozenset[str]:
    raw = claims.get(config.scopes_claim, "")
    names = raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
    return frozenset(config.scope_map.get(name, name) for name in names)


def _signing_key(config: OidcConfig, kid: str | None) -> jwt.PyJWK:
    """The key for `kid`. Known keys are answered from the cache at once (a stale cache is refreshed in the
    background); an unknown kid refetches only when the floor since the last fetch has passed."""
    cache = config.cache
    if cache.fetched_at is None:
        _first_fetch(config)
    elif time.monotonic() - cache.fetched_at > config.jwks_ttl_s:
        _refresh_in_background(config)
    key = _pick(cache.keys, kid)
    if key is None and _claim_fetch(config):
        # Maybe the issuer rotated its keys: this request fetches (and waits); others do not wait for it.
        try:
            _refresh(config)
        finally:
            cache.fetch_lock.release()
        key = _pick(cache.keys, kid)
    if key is None:
        raise OidcTokenError(f"OIDC token key id {kid!r} is not among the issuer's signing keys")
    return key


def _pick(keys: Mapping[str, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        # A token without kid is acceptable only when the issuer publishes exactly one key.
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


def _floor_passed(config: OidcConfig) -> bool:
    attempted = config.cache.attempted_at
    return attempted is None or time.monotonic() - attempted >= config.jwks_refetch_floor_s


def _claim_fetch(config: OidcConfig) -> bool:
    """Take the fetch lock without waiting when the floor has passed; the caller fetches and releases it."""
    cache = config.cache
    if not _floor_passed(config) or not cache.fetch_lock.acquire(blocking=False):
        return False
    if _floor_passed(config):
        return True
    cache.fetch_lock.release()  # another thread fetched between our look and the lock
    return False


def _first_fetch(config: OidcConfig) -> None:
    """No keys yet, so nothing can be verified without them: wait for the one fetch in progress, or fetch."""
    cache = config.cache
    if not cache.fetch_lock.acquire(timeout=2 * config.http_timeout_s + 1):
        raise OidcTokenError("the OIDC issuer's signing keys are being fetched; retry shortly")
    try:
        if cache.fetched_at is not None:
            return
        if not _floor_passed(config):
            raise OidcTokenError(
                "cannot fetch the OIDC issuer's signing keys (the last attempt failed); "
                f"retrying at most every {config.jwks_refetch_floor_s:g} s"
            )
        _refresh(config)
    finally:
        cache.fetch_lock.release()


def _refresh_in_background(config: OidcConfig) -> None:
    """Start refreshing stale keys in a thread of its own, unless a fetch is running or was tried too lately."""
    if not _claim_fetch(config):
        return

    def run() -> None:
        try:
            _refresh(config)
        except OidcTokenError as exc:  # the known keys keep serving until a later refresh succeeds
            log.warning("%s; keeping the keys fetched before", exc)
        finally:
            config.cache.fetch_lock.release()

    threading.Thread(target=run, name="rayweave-jwks-refresh", daemon=True).start()


def _refresh(config: OidcConfig) -> None:
    """Fetch the key set (the caller holds the fetch lock) and replace the cached keys with it."""
    cache = config.cache
    cache.attempted_at = time.monotonic()
    try:
        if cache.jwks_url is None:
            cache.jwks_url = config.jwks_url or _discover_jwks_url(config)
        response = httpx.get(cache.jwks_url, timeout=config.http_timeout_s)
        response.raise_for_status()
        keyset = jwt.PyJWKSet.from_dict(response.json())
    except (httpx.HTTPError, ValueError, TypeError, AttributeError, jwt.PyJWTError) as exc:
        raise OidcTokenError(f"cannot fetch the OIDC issuer's signing keys ({type(exc).__name__})") from None
    signing = [k for k in keyset.keys if k.public_key_use in (None, "sig")]
    cache.keys = MappingProxyType({k.key_id or f"#{i}": k for i, k in enumerate(signing)})
    cache.fetched_at = time.monotonic()


def _discover_jwks_url(config: OidcConfig) -> str:
    url = config.issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = httpx.get(url, timeout=config.http_timeout_s)
    response.raise_for_status()
    jwks_uri = response.json().get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError("openid-configuration has no jwks_uri")
    return jwks_uri
