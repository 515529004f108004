"""Browser sign-in (issue 18): OIDC code flow with PKCE against a provider on loopback, session and CSRF cookies,
group claims to scopes, sign-out revoking the session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.config import ServeOptions
from serve.oidc import OidcConfig
from serve.sessions import CSRF_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, BrowserLogin
from tests.serve.api.conftest import add_doc
from tests.serve.api.oidc_provider import CLIENT_ID, Provider, provider_app
from tests.serve.api.server import free_port, serving


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    state = Provider()
    with serving(provider_app(state)) as url:
        state.issuer = url
        yield state


@pytest.fixture(scope="module")
def site(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("login-home")
    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    port = free_port()
    login = BrowserLogin(
        client_id=CLIENT_ID,
        redirect_url=f"http://127.0.0.1:{port}/auth/callback",
        group_scopes={
            "rw-editors": ("workflows:read", "workflows:write", "runs:read", "runs:write"),
            "rw-viewers": ("workflows:read", "runs:read"),
        },
    )
    options = ServeOptions(
        executor="local",
        print_admin_key=False,
        oidc=OidcConfig(issuer=provider.issuer, audience="rayweave-api"),
        browser_login=login,
    )
    try:
        with serving(create_app(settings, store=store, options=options), port=port) as url:
            yield url
    finally:
        store.close()


def _cookies(response: httpx.Response) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel
    return jar


def _sign_in(
    site: str, provider: Provider, user: str, groups: list[str], next_path: str = "/ui/"
) -> dict[str, str]:
    """Walk the browser's redirects by hand; returns the session cookies (as a browser would keep them)."""
    provider.next_user = (user, groups)
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{site}/auth/login", params={"next": next_path})
        assert start.status_code == 302
        login_cookie = _cookies(start)[LOGIN_COOKIE]
        assert (
            login_cookie["httponly"] and login_cookie["secure"] and login_cookie["samesite"].lower() == "lax"
        )
        asked = parse_qs(urlsplit(start.headers["location"]).query)
        assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
        back = browser.get(start.headers["location"])
        assert back.status_code == 302 and back.headers["location"].startswith(f"{site}/auth/callback")
        done = browser.get(
            back.headers["location"], headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie.value}"}
        )
    assert done.status_code == 302, done.text
    assert done.headers["location"] == next_path
    cookies = _cookies(done)
    session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
    assert session["httponly"] and session["secure"] and session["samesite"].lower() == "lax"
    assert not csrf["httponly"] and csrf["samesite"].lower() == "strict"
    return {SESSION_COOKIE: session.value, CSRF_COOKIE: csrf.value}


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def test_sign_in_with_pkce_then_use_the_api_with_the_session_and_csrf(site: str, provider: Provider) -> None:
    cookies = _sign_in(site, provider, "ada", ["rw-editors"])
    # The provider got the PKCE verifier of the challenge (it checked it) and no client secret.
    assert provider.token_requests[-1]["client_id"] == CLIENT_ID
    jar = {"Cookie": _cookie_header(cookies)}
    with httpx.Client(base_url=site, timeout=30) as browser:
        me = browser.get("/auth/session", headers=jar)
        assert me.status_code == 200 and me.json()["username"] == "oidc:ada"
        assert "workflows:write" in me.json()["scopes"] and "keys:admin" not in me.json()["scopes"]
        assert browser.get("/v1/workflows", headers=jar).status_code == 200
        # An unsafe request signed in by the cookie needs the CSRF token echoed in the header.
        forged = browser.post("/v1/workflows", json={"workflow": add_doc("csrf")}, headers=jar)
        assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
        wrong = browser.post(
            "/v1/workflows", json={"workflow": add_doc("csrf")}, headers={**jar, "X-CSRF-Token": "guess"}
        )
        assert wrong.status_code == 403
        made = browser.post(
            "/v1/workflows",
            json={"workflow": add_doc("csrf")},
            headers={**jar, "X-CSRF-Token": cookies[CSRF_COOKIE]},
        )
        assert made.status_code == 201, made.text
        # Scopes come from the groups: no key administration for an editor.
        assert browser.get("/v1/keys", headers=jar).status_code == 403
        # Sign-out revokes the session on the server, not just in the browser.
        out = browser.post("/auth/logout", headers={**jar, "X-CSRF-Token": cookies[CSRF_COOKIE]})
        assert out.status_code == 204
        deadline = time.monotonic() + 2
        while browser.get("/v1/workflows", headers=jar).status_code != 401:
            assert time.monotonic() < deadline, "the session still works after sign-out"
            time.sleep(0.1)


def test_a_viewer_gets_read_scopes_only_and_unmapped_groups_cannot_sign_in(
    site: str, provider: Provider
) -> None:
    viewer = {"Cookie": _cookie_header(_sign_in(site, provider, "vic", ["rw-viewers"]))}
    with httpx.Client(base_url=site, timeout=30) as browser:
        assert browser.get("/v1/runs", headers=viewer).status_code == 200
    provider.next_user = ("mallory", ["other-team"])
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{site}/auth/login")
        back = browser.get(start.headers["location"])
        refused = browser.get(
            back.headers["location"],
            headers={"Cookie": f"{LOGIN_COOKIE}={_cookies(start)[LOGIN_COOKIE].value}"},
        )
    assert refused.status_code == 403
    assert "groups of 'mallory' (other-team) grant no access" in refused.json()["detail"]


def test_a_forged_or_replayed_callback_is_refused(site: str, provider: Provider) -> None:
    provider.next_user = ("ada", ["rw-editors"])
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{site}/auth/login", params={"next": "https://evil.example/"})
        login_cookie = _cookies(start)[LOGIN_COOKIE].value
        back = browser.get(start.headers["location"])
        callback = back.headers["location"]
        # No sign-in under way in this browser (an attacker's link): refused.
        lost = browser.get(callback)
        assert lost.status_code == 400 and "no sign-in is under way" in lost.json()["detail"]
        # Another state than the one this browser started with: refused.
        swapped = browser.get(
            callback.replace("state=", "state=x"), headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"}
        )
        assert swapped.status_code == 400 and "state does not match" in swapped.json()["detail"]
        # The real callback works once, and only to a path of this server (no open redirect)...
        ok = browser.get(callback, headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"})
        assert ok.status_code == 302 and ok.headers["location"] == "/"
        # ...and its code cannot be used again.
        again = browser.get(callback, headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"})
        # A refused code is the browser's bad input (400); 502 is kept for a provider that fails.
        assert again.status_code == 400 and "refused the sign-in's code" in again.json()["detail"]


def test_a_websocket_with_the_session_cookie_must_come_from_this_origin(
    site: str, provider: Provider
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    cookies = _sign_in(site, provider, "wes", ["rw-editors"])
    with httpx.Client(base_url=site, timeout=30) as browser:
        run = browser.post(
            "/v1/runs",
            json={"workflow": add_doc("ws"), "inputs": {"a": 1, "b": 2}},
            headers={"Cookie": _cookie_header(cookies), "X-CSRF-Token": cookies[CSRF_COOKIE]},
        )
        assert run.status_code == 202, run.text
    ws_url = site.replace("http://", "ws://") + f"/v1/runs/{run.json()['id']}/events"
    header = {"Cookie": _cookie_header(cookies)}
    with connect(ws_url, additional_headers=header, origin="http://evil.example") as ws:  # type: ignore[arg-type]
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
        assert "4403" in str(closed.value) or "cross-site" in str(closed.value)
    host = urlsplit(site).netloc
    try:
        with connect(ws_url, additional_headers=header, origin=f"http://{host}") as ws:  # type: ignore[arg-type]
            first = ws.recv(timeout=10)
        assert '"type"' in str(first)
    except InvalidStatus as exc:  # pragma: no cover - reported clearly
        raise AssertionError(f"same-origin WebSocket refused: {exc}") from None
