"""OIDC bearer tokens: verified against a JWKS served on 127.0.0.1, mapped to users with tenancy and scopes."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from engine.store import ReservedUsernameError
from serve.config import ServeOptions
from serve.oidc import OidcConfig
from tests.serve.api.conftest import Api, add_doc, start_api

AUDIENCE = "rayweave-test"


class Issuer:
    """A fake identity provider: an RSA key pair, its JWKS and discovery document served over HTTP.

    `delay_s` slows the JWKS answer down (a distant or overloaded provider); `rotate` replaces the key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.url = ""
        self.jwks_requests = 0
        self.delay_s = 0.0

    def rotate(self, kid: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid

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


@contextmanager
def serving_issuer() -> Iterator[Issuer]:
    """An `Issuer` served on 127.0.0.1 until the block ends."""
    idp = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": idp.url, "jwks_uri": idp.url + "/jwks"}
            elif self.path == "/jwks":
                idp.jwks_requests += 1
                time.sleep(idp.delay_s)
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
    server.daemon_threads = True
    idp.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with serving_issuer() as idp:
        yield idp


def _oidc_options(issuer: Issuer, **oidc: Any) -> ServeOptions:
    return ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        auth_failures_per_s=10_000,
        auth_failure_burst=10_000,
        print_admin_key=False,
        recovery=False,
        oidc=OidcConfig(issuer=issuer.url, audience=AUDIENCE, leeway_s=5, **oidc),
    )


@pytest.fixture(scope="module")
def oidc_api(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api(Path(tmp_path_factory.mktemp("oidc-home")), _oidc_options(issuer))


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
    # The keys were fetched moments ago, within the refetch floor (30 s): an unknown kid does not refetch.
    assert issuer.jwks_requests == before
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


def _b64(data: bytes | dict[str, Any] | list[Any]) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _crafted(header: Any, claims: Any, signature: str = "c2ln") -> str:
    return f"{_b64(header)}.{_b64(claims)}.{signature}"


def test_every_bad_token_is_401_never_a_server_error(oidc_api: Api, issuer: Issuer) -> None:
    now = int(time.time())
    good = {"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "exp": now + 300}
    ec_key = ec.generate_private_key(ec.SECP256R1())

    def signed(claims: dict[str, Any], **headers: Any) -> str:
        # Signed as raw bytes: jwt.encode itself refuses some of these claims.
        payload = json.dumps(claims).encode()
        return jwt.api_jws.encode(payload, issuer.key, "RS256", headers={"kid": issuer.kid, **headers})

    tokens = {
        # The header says ES256 while kid names the issuer's RSA key: the library raised TypeError (500).
        "ES256 for an RSA key": jwt.encode(good, ec_key, "ES256", headers={"kid": issuer.kid}),
        "ES256 without kid": jwt.encode(good, ec_key, "ES256"),
        "alg none with kid": _crafted({"alg": "none", "kid": issuer.kid}, good, ""),
        "alg PS256": _crafted({"alg": "PS256", "kid": issuer.kid}, good),
        "alg a list": _crafted({"alg": ["RS256"], "kid": issuer.kid}, good),
        "alg missing": _crafted({"kid": issuer.kid}, good),
        "kid a number": _crafted({"alg": "RS256", "kid": 7}, good),
        "kid an object": _crafted({"alg": "RS256", "kid": {"a": 1}}, good),
        "header a list": _crafted(["RS256"], good),
        "header not JSON": f"{_b64(b'{not json')}.{_b64(good)}.c2ln",
        "header not UTF-8": f"{_b64(bytes([0xFF, 0xFE, 0x80]))}.{_b64(good)}.c2ln",
        "header bad base64": f"A.{_b64(good)}.c2ln",
        "claims not JSON": _crafted({"alg": "RS256", "kid": issuer.kid}, b"\x00\x01garbage"),
        "claims a list": _crafted({"alg": "RS256", "kid": issuer.kid}, [1, 2]),
        "empty signature": _crafted({"alg": "RS256", "kid": issuer.kid}, good, ""),
        "garbage signature": _crafted({"alg": "RS256", "kid": issuer.kid}, good, "x" * 342),
        "exp a string": signed({**good, "exp": "soon"}),
        "aud an object": signed({**good, "aud": {"a": 1}}),
        "iss a number": signed({**good, "iss": 5}),
        "sub a number": signed({**good, "sub": 5}),
        "sub too long": signed({**good, "sub": "u" * 500}),
        "no exp": signed({**good, "exp": None}),
        "unknown crit": signed(good, crit=["x-ours"]),
    }
    with httpx.Client(base_url=oidc_api.url, timeout=30) as c:
        for label, token in tokens.items():
            r = c.get("/v1/workflows", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, f"{label}: {r.status_code} {r.text}"
            assert r.headers["content-type"].startswith("application/problem+json"), label
            assert "OIDC token" in r.json()["detail"], f"{label}: {r.json()['detail']}"
            assert token not in r.text, label
        assert (
            "does not match"
            in c.get(
                "/v1/workflows", headers={"Authorization": f"Bearer {tokens['ES256 for an RSA key']}"}
            ).json()["detail"]
        )
        # and the server is fine afterwards
        valid = c.get("/v1/workflows", headers={"Authorization": f"Bearer {issuer.token('after')}"})
        assert valid.status_code == 200


def test_oidc_user_names_are_reserved_for_oidc_logins(oidc_api: Api, issuer: Issuer) -> None:
    with oidc_api.client() as admin:
        refused = admin.post("/v1/keys", json={"username": "oidc:mallory", "scopes": ["workflows:read"]})
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "username" in refused.json()["detail"] and "'oidc:'" in refused.json()["detail"]
        assert admin.post("/v1/keys", json={"username": "OIDC:mallory", "scopes": []}).status_code == 400
    with pytest.raises(ReservedUsernameError, match="reserved"):
        oidc_api.store.users.create("oidc:mallory")
    assert not [u for u in oidc_api.store.users.list() if u.username.casefold() == "oidc:mallory"]
    # The real mallory logs in and gets an account of her own, with no key anybody made for it.
    with oidc_api.client(issuer.token("mallory")) as c:
        assert c.get("/v1/workflows").status_code == 200
    user = oidc_api.store.users.get_by_username("oidc:mallory")
    assert oidc_api.store.api_keys.list(user_id=user.id) == []
    # A local name merely containing the prefix elsewhere is an ordinary name.
    assert oidc_api.store.users.create("not-oidc:mallory").username == "not-oidc:mallory"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _with_kid(issuer: Issuer, kid: str, sub: str = "x") -> str:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": sub, "scope": "workflows:read", "exp": now + 300}
    return jwt.encode(claims, issuer.key, "RS256", headers={"kid": kid})


def test_unknown_kids_refetch_at_most_once_per_floor(tmp_path: Path) -> None:
    with serving_issuer() as idp:
        floor = 3.0
        gen = start_api(tmp_path, _oidc_options(idp, jwks_refetch_floor_s=floor))
        api = next(gen)
        try:
            with httpx.Client(base_url=api.url, timeout=30) as c:
                fetched_at = time.monotonic()  # no later than the server's first fetch
                assert c.get("/v1/workflows", headers=_bearer(idp.token("a"))).status_code == 200
                assert idp.jwks_requests == 1
                for i in range(10):  # within the floor: refused without a fetch
                    assert (
                        c.get("/v1/workflows", headers=_bearer(_with_kid(idp, f"bogus-{i}"))).status_code
                        == 401
                    )
                # At most one fetch per floor (a loaded machine may take longer than the floor for the ten).
                assert idp.jwks_requests <= 1 + int((time.monotonic() - fetched_at) // floor)
                before = idp.jwks_requests
                # The provider rotates its key; once the floor has passed the new kid fetches once and is accepted.
                idp.rotate("k2")
                time.sleep(floor + 0.1)
                assert c.get("/v1/workflows", headers=_bearer(idp.token("b"))).status_code == 200
                assert idp.jwks_requests == before + 1
                assert c.get("/v1/workflows", headers=_bearer(idp.token("c"))).status_code == 200
                assert idp.jwks_requests == before + 1
        finally:
            gen.close()


def test_bogus_kids_do_not_delay_valid_tokens(tmp_path: Path) -> None:
    with serving_issuer() as idp:
        gen = start_api(tmp_path, _oidc_options(idp, jwks_refetch_floor_s=1.0))
        api = next(gen)
        try:
            valid = _bearer(idp.token("valid"))
            with httpx.Client(base_url=api.url, timeout=60) as c:
                assert c.get("/v1/workflows", headers=valid).status_code == 200  # keys fetched and cached
            idp.delay_s = 3.0  # every further fetch of the keys takes 3 s
            time.sleep(1.1)  # past the floor: one refetch is allowed
            fetches = idp.jwks_requests
            start = threading.Barrier(31)

            def bogus(i: int) -> int:
                with httpx.Client(base_url=api.url, timeout=60) as c:
                    start.wait()
                    return c.get("/v1/workflows", headers=_bearer(_with_kid(idp, f"bogus-{i}"))).status_code

            with ThreadPoolExecutor(30) as pool:
                pending = pool.map(bogus, range(30))
                start.wait()
                time.sleep(0.3)  # the bogus tokens are in, one of them fetching for 3 s
                latencies = []
                with httpx.Client(base_url=api.url, timeout=60) as c:
                    for _ in range(5):
                        began = time.perf_counter()
                        assert c.get("/v1/workflows", headers=valid).status_code == 200
                        latencies.append(time.perf_counter() - began)
                codes = list(pending)
        finally:
            gen.close()
    assert codes == [401] * 30
    # A known kid never waits for the 3 s fetch (before: one global lock, each bogus kid fetched in turn).
    assert max(latencies) < 1.5, latencies
    assert idp.jwks_requests - fetches == 1  # the 30 unknown kids caused one fetch, not 30


def test_oidc_options_travel_to_serve_replicas(issuer: Issuer) -> None:
    # `rayweave serve` sends its ServeOptions to each Ray Serve replica: the key cache (with its lock) could not
    # be pickled, so serving with OIDC failed to deploy. A copy starts with an empty cache and fetches itself.
    import pickle

    options = _oidc_options(issuer)
    assert options.oidc is not None
    options.oidc.cache.keys = {"k": None}  # type: ignore[dict-item]
    copy = pickle.loads(pickle.dumps(options))  # what Ray's cloudpickle does with these classes
    assert copy.oidc == options.oidc and dict(copy.oidc.cache.keys) == {}
