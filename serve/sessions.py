"""Browser sessions: the cookies, the sign-in configuration, and the CSRF and origin checks of requests that a
session cookie authenticates (`serve.browser_login` holds the sign-in routes; `serve.auth` reads the cookie).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from serve.errors import ForbiddenError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection, Request

#: The cookies of a browser session (the secret, and the CSRF token pages echo), and of a sign-in underway.
SESSION_COOKIE = "rw_session"
CSRF_COOKIE = "rw_csrf"
LOGIN_COOKIE = "rw_login"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How long a sign-in may take between the redirect to the provider and the callback.
LOGIN_TTL_S = 600
#: The name of the API key behind each browser session.
SESSION_KEY_NAME = "browser session"


@dataclass(frozen=True)
class BrowserLogin:
    """How browsers sign in (`ServeOptions.browser_login`); needs `ServeOptions.oidc` (the issuer and its keys).

    `redirect_url` is the public URL of `/auth/callback` as registered with the provider; `group_scopes` maps
    the provider's group names (in the ID token's `groups_claim`) to rayweave scopes: a user whose groups grant
    none cannot sign in. `secure_cookies` False only for plain-HTTP development on localhost.
    """

    client_id: str
    redirect_url: str
    client_secret: str | None = None
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    group_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    session_ttl_s: float = 8 * 3600.0
    secure_cookies: bool = True
    http_timeout_s: float = 10.0

    def __repr__(self) -> str:  # the client secret stays out of logs
        return f"BrowserLogin(client_id={self.client_id!r}, redirect_url={self.redirect_url!r})"


def session_secret(connection: HTTPConnection) -> str | None:
    """The session cookie's secret of a request without an `Authorization` header (else None)."""
    if connection.headers.get("authorization"):
        return None
    return connection.cookies.get(SESSION_COOKIE) or None


def check_csrf(request: Request) -> None:
    """Refuse an unsafe request authenticated by the session cookie unless `X-CSRF-Token` echoes the CSRF
    cookie (a page of this server can read it; another site's page cannot)."""
    if request.method in SAFE_METHODS or session_secret(request) is None:
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise ForbiddenError(
            "cross-site request refused: a request signed in by the session cookie must send the value of the "
            f"{CSRF_COOKIE} cookie in the X-CSRF-Token header"
        )


def check_websocket_origin(connection: HTTPConnection) -> None:
    """Refuse a WebSocket authenticated by the session cookie that does not come from this server's own origin
    (cross-site WebSocket hijacking: browsers send cookies with cross-site WebSocket handshakes)."""
    if session_secret(connection) is None:
        return
    origin = connection.headers.get("origin", "")
    host = connection.headers.get("host", "")
    if not origin or urlsplit(origin).netloc != host:
        raise ForbiddenError(
            "cross-site WebSocket refused: a stream opened with the session cookie must come from this server's "
            "own pages (Origin must match Host)"
        )
