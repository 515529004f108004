"""Bad input to the browser sign-in routes (`/auth/login|callback|logout|session`, outside the OpenAPI document,
so the schema-driven suites do not reach them): garbage query strings, huge parameters, forged and malformed
cookies, wrong methods. Each is refused with a 4xx problem or handled; never a 5xx, never a traceback."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from serve.sessions import CSRF_COOKIE, LOGIN_COOKIE, SESSION_COOKIE
from tests.serve.api.oidc_provider import Provider
from tests.serve.api.test_browser_login import _sign_in, provider, site  # noqa: F401 (fixtures)

ROUTES = ("/auth/login", "/auth/callback", "/auth/logout", "/auth/session")
#: Big enough to hurt, small enough to reach the app (uvicorn refuses requests whose head exceeds 16 KB).
HUGE = "x" * 12_000


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text, what


def _forged_flows() -> list[tuple[str, str]]:
    """(login cookie, state) pairs a browser could send: malformed, wrong types, expired, incomplete."""
    now = time.time()
    return [
        ("", "s"),
        ("!!!not-base64!!!", "s"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "s"),
        (_b64(1), "s"),
        (_b64([1, 2]), "s"),
        (_b64("text"), "s"),
        (_b64({"at": "yesterday", "state": "s"}), "s"),
        (_b64({"at": 1e308, "state": "s"}), "s"),
        (_b64({"at": None, "state": "s"}), "s"),
        (_b64({"at": now - 10**6, "state": "s"}), "s"),
        (_b64({"at": now, "state": ["s"]}), "s"),
        (_b64({"at": now, "state": "s"}), "s"),  # no verifier, nonce or next
        (_b64({"at": now, "state": "s", "verifier": 7, "nonce": None, "next": 3}), "s"),
        (_b64({"at": now, "state": "s", "verifier": "v" * 64, "nonce": "n", "next": "//evil"}), "s"),
        ("A" * 8000, "s"),
    ]


def test_garbage_to_login_and_callback_is_never_a_server_error(site: str) -> None:  # noqa: F811
    with httpx.Client(base_url=site, timeout=30) as browser:
        for target in ["\x00", "%00", "//evil.example", "\\\\evil", "https://evil.example/", "é" * 100, HUGE]:
            _check(browser.get("/auth/login", params={"next": target}), f"login next={target[:20]!r}")
        _check(browser.get("/auth/login?next=a&next=b&next=%ZZ&&=&x"), "login: repeated and broken params")
        _check(browser.get("/auth/login", params={"next": HUGE * 3}), "login: a request head over 16 KB")
        for params in [
            {},
            {"state": "s"},
            {"code": "c"},
            {"error": HUGE},
            {"error": "access_denied", "error_description": "\x00"},
            {"code": HUGE, "state": HUGE},
            {"code": "c", "state": "\x00"},
        ]:
            _check(browser.get("/auth/callback", params=params), f"callback {list(params)}")
        _check(browser.get("/auth/callback?code=%ZZ&state=%&&&"), "callback: broken query string")
        for cookie, state in _forged_flows():
            response = browser.get(
                "/auth/callback",
                params={"code": "not-a-code-the-provider-issued", "state": state},
                headers={"Cookie": f"{LOGIN_COOKIE}={cookie}"},
            )
            _check(response, f"callback with login cookie {cookie[:40]!r}")
            assert response.status_code in (400, 401, 403), (cookie[:40], response.status_code, response.text)


def test_bad_cookies_to_session_and_logout_are_refused_not_failed(site: str, provider: Provider) -> None:  # noqa: F811
    real = _sign_in(site, provider, "grace", ["rw-viewers"])
    jars = [
        f"{SESSION_COOKIE}=",
        f"{SESSION_COOKIE}=garbage",
        f"{SESSION_COOKIE}={HUGE[:7000]}",
        f'{SESSION_COOKIE}="quoted"; {CSRF_COOKIE}="x"',
        f"{SESSION_COOKIE}=rw_%00%ff; {CSRF_COOKIE}=%00",
        f"{SESSION_COOKIE}={real[SESSION_COOKIE]}x",  # a session one character off
        ";;;==;=",
        "no-equals-sign",
    ]
    with httpx.Client(base_url=site, timeout=30) as browser:
        for jar in jars:
            for method, path in (("GET", "/auth/session"), ("POST", "/auth/logout")):
                headers = {"Cookie": jar, "X-CSRF-Token": "forged"}
                response = browser.request(method, path, headers=headers)
                _check(response, f"{method} {path} with {jar[:40]!r}")
                assert response.status_code in (400, 401, 403), (jar[:40], response.status_code)
        forged_csrf = {"Cookie": f"{SESSION_COOKIE}={real[SESSION_COOKIE]}; {CSRF_COOKIE}=not-the-token"}
        refused = browser.post("/auth/logout", headers={**forged_csrf, "X-CSRF-Token": "forged"})
        assert refused.status_code == 403, refused.text
        # The real session still works: none of the above signed it out.
        ok = browser.get("/auth/session", headers={"Cookie": f"{SESSION_COOKIE}={real[SESSION_COOKIE]}"})
        assert ok.status_code == 200 and ok.json()["username"].endswith("grace")


@pytest.mark.parametrize("path", ROUTES)
def test_wrong_methods_are_405(site: str, path: str) -> None:  # noqa: F811
    allowed = "POST" if path == "/auth/logout" else "GET"
    with httpx.Client(base_url=site, timeout=30) as browser:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method == allowed:
                continue
            response = browser.request(method, path, content=b"{not json", headers={"X-CSRF-Token": "x"})
            _check(response, f"{method} {path}")
            assert response.status_code == 405, (method, path, response.status_code)
