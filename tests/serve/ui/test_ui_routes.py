"""The `/ui` routes without a browser: the page and its caching, the bundle-missing page, and API key sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve.ui.routes import IMMUTABLE


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in bundle: the page, one hashed asset, one top-level file (and a file beside it, not served)."""
    tmp_path = tmp_path_factory.mktemp("ui")
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>rayweave</title><div id=root></div>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "assets" / "elk-def456.js").write_text("function layout() { return 1; }\n" * 200)
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not served")
    return root


@pytest.fixture
def client(site: dict[str, Any], bundle: Path) -> Iterator[httpx.Client]:
    """A browser-like client without cookies, from the server's own origin; the app serves the stand-in bundle
    for the test's duration."""
    app = site["app"]
    real = app.state.ui_bundle
    app.state.ui_bundle = bundle
    try:
        with httpx.Client(base_url=site["url"], headers={"origin": site["url"]}, timeout=30) as c:
            yield c
    finally:
        app.state.ui_bundle = real


def test_the_page_answers_every_ui_path_uncached_and_assets_are_immutable(client: httpx.Client) -> None:
    for path in ("/ui/", "/ui/workflows/abc", "/ui/runs/xyz?tab=1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<div id=root>" in response.text
        assert response.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert client.get("/ui").headers["location"] == "/ui/"
    asset = client.get("/ui/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.headers["cache-control"] == IMMUTABLE
    assert "javascript" in asset.headers["content-type"]
    assert client.get("/ui/favicon.svg").text == "<svg/>"
    missing = client.get("/ui/assets/index-old.js")
    assert missing.status_code == 404 and "reload the page" in missing.json()["detail"]
    # Nothing outside the bundle, however the path is spelled.
    for path in ("/ui/assets/../../secret.txt", "/ui/assets/%2e%2e/%2e%2e/secret.txt", "/ui/..%2fsecret.txt"):
        assert "not served" not in client.get(path).text, path
    assert client.get("/ui/api/nothing").status_code == 404
    assert not any(p.startswith("/ui") for p in client.get("/openapi.json").json()["paths"])


def test_assets_are_sent_gzipped_to_browsers_that_accept_it(client: httpx.Client) -> None:
    # What a browser loads is the compressed size (elkjs's worker: 1.6 MB as a file, 464 KB gzipped).
    original = "function layout() { return 1; }\n" * 200
    for _ in range(2):  # compressed at the first request, then kept
        asset = client.get("/ui/assets/elk-def456.js", headers={"Accept-Encoding": "gzip, deflate, br"})
        assert asset.status_code == 200 and asset.headers["content-encoding"] == "gzip"
        assert int(asset.headers["content-length"]) < len(original) / 10
        assert asset.text == original  # httpx decompresses
        assert asset.headers["cache-control"] == IMMUTABLE and asset.headers["vary"] == "Accept-Encoding"
        assert "javascript" in asset.headers["content-type"]
    for refused in ("identity", "gzip;q=0", ""):
        plain = client.get("/ui/assets/elk-def456.js", headers={"Accept-Encoding": refused})
        assert "content-encoding" not in plain.headers and plain.text == original, refused
    # A small file is sent as it is.
    small = client.get("/ui/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers and small.text == "console.log(1)"


def test_without_a_built_bundle_the_page_says_how_to_build_it(
    site: dict[str, Any], client: httpx.Client, tmp_path: Path
) -> None:
    site["app"].state.ui_bundle = tmp_path / "nothing-here"
    response = client.get("/ui/workflows")
    assert response.status_code == 503
    assert "make ui" in response.text and "npm ci" in response.text


def test_api_key_sign_in_opens_a_cookie_session_the_api_accepts(
    site: dict[str, Any], client: httpx.Client
) -> None:
    assert client.get("/ui/api/session").json() == {"signed_in": False, "oidc_login": False}
    bad = client.post("/ui/api/session", json={"api_key": "rw_not-a-key"})
    assert bad.status_code == 401
    assert "rw_session" not in client.cookies
    response = client.post("/ui/api/session", json={"api_key": site["key"]})
    assert response.status_code == 204
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("rw_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert "Max-Age" not in session and "expires" not in session.lower()  # gone when the browser closes
    me = client.get("/ui/api/session").json()
    assert me["signed_in"] and me["username"] == "admin" and me["kind"] == "api-key"
    assert client.get("/v1/workflows").status_code == 200  # the API takes the cookie
    # Unsafe requests need the CSRF token (double submit), as for every cookie session.
    check = {"source": "Int", "target": "Float"}
    assert client.post("/v1/types/check", json=check).status_code == 403
    token = client.cookies["rw_csrf"]
    assert client.post("/v1/types/check", json=check, headers={"X-CSRF-Token": token}).json()["assignable"]
    assert client.delete("/ui/api/session").status_code == 403  # sign-out without the token: refused
    assert client.delete("/ui/api/session", headers={"X-CSRF-Token": token}).status_code == 204
    assert client.get("/ui/api/session").json()["signed_in"] is False
    # Signing out of an API key session leaves the key itself valid.
    key = {"Authorization": f"Bearer {site['key']}"}
    assert client.get("/v1/workflows", headers=key).status_code == 200


def test_sign_in_from_another_site_is_refused(site: dict[str, Any], client: httpx.Client) -> None:
    for origin in ("http://evil.example", ""):
        response = client.post("/ui/api/session", json={"api_key": site["key"]}, headers={"origin": origin})
        assert response.status_code == 403, origin
        assert "Origin must match Host" in response.json()["detail"]
    assert "rw_session" not in client.cookies
