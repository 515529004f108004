"""OIDC bearer tokens: verified against a JWKS served on 127.0.0.1, mapped to users with tenancy and scopes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from serve.config import ServeOptions
from serve.oidc import OidcConfig
from tests.serve.api.conftest import Api, add_doc, start_api

AUDIENCE = "rayweave-test"


class Issuer:
    """A fake identity provider: an RSA key pair, its JWKS and discovery document served over HTTP."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.url = ""
        self.jwks_requests = 0

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def token(self, sub: str, scope: str = "workflows:read", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": sub,
            "scope": scope,
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    idp = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": idp.url, "jwks_uri": idp.url + "/jwks"}
            elif self.path == "/jwks":
                idp.jwks_requests += 1
                body = idp.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    idp.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield idp
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def oidc_api(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        print_admin_key=False,
        oidc=OidcConfig(issuer=issuer.url, audience=AUDIENCE, leeway_s=5),
    )
    yield from start_api(Path(tmp_path_factory.mktemp("oidc-home")), options)


def test_valid_token_reads_but_cannot_write(oidc_api: Api, issuer: Issuer) -> None:
    with oidc_api.client(issuer.token("reader")) as c:
        assert c.get("/v1/workflows").status_code == 200
        denied = c.post("/v1/workflows", json={"workflow": add_doc()})
    assert denied.status_code == 403
    assert "workflows:write" in denied.json()["detail"]
    assert oidc_api.store.users.get_by_username("oidc:reader")


def _refused(api: Api, token: str) -> str:
    with api.client(token) as c:
        r = c.get("/v1/workflows")
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = str(r.json()["detail"])
    assert token not in detail
    return detail


def test_bad_tokens_are_401_with_reason(oidc_api: Api, issuer: Issuer) -> None:
    now = int(time.time())
    assert "expired" in _refused(oidc_api, issuer.token("u", exp=now - 120))
    assert "audience" in _refused(oidc_api, issuer.token("u", aud="someone-else"))
    assert "issuer" in _refused(oidc_api, issuer.token("u", iss="https://evil.example"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "exp": now + 300},
        other,
        "RS256",
        headers={"kid": "k1"},
    )
    assert "signature" in _refused(oidc_api, forged)
    unsigned = jwt.encode({"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "exp": now + 300}, "", "none")
    assert "'none'" in _refused(oidc_api, unsigned)
    # The classic confusion attack: HMAC keyed with the issuer's public key must not verify.
    hmac = jwt.encode(
        {"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "exp": now + 300}, "public-key-bytes-" * 4, "HS256"
    )
    assert "'HS256'" in _refused(oidc_api, hmac)
    unknown_kid = jwt.encode(
        {"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "exp": now + 300},
        issuer.key,
        "RS256",
        headers={"kid": "rotated-away"},
    )
    before = issuer.jwks_requests
    assert "key id" in _refused(oidc_api, unknown_kid)
    assert issuer.jwks_requests == before + 1  # an unknown kid refetches the keys once
    failures = [e for e in oidc_api.store.audit.list() if e.action == "auth.failed"]
    assert any("expired" in str(e.details) for e in failures)


def test_two_oidc_users_do_not_see_each_other(oidc_api: Api, issuer: Issuer) -> None:
    rw = "workflows:read workflows:write"
    with oidc_api.client(issuer.token("ann", rw)) as ann, oidc_api.client(issuer.token("bob", rw)) as bob:
        created = ann.post("/v1/workflows", json={"workflow": add_doc("anns")})
        assert created.status_code == 201, created.text
        wid = created.json()["workflow_id"]
        assert ann.get(f"/v1/workflows/{wid}").status_code == 200
        assert bob.get(f"/v1/workflows/{wid}").status_code == 404
        assert wid not in [w["workflow_id"] for w in bob.get("/v1/workflows").json()["items"]]


def test_api_keys_still_work_alongside_oidc(oidc_api: Api) -> None:
    with oidc_api.client() as c:
        assert c.get("/v1/workflows").status_code == 200
    assert "malformed" in _refused(oidc_api, "rw_notakey")


def test_without_oidc_jwts_are_refused(api: Api, issuer: Issuer) -> None:
    assert _refused(api, issuer.token("reader"))
    assert not [u for u in api.store.users.list() if u.username.startswith("oidc:")]
