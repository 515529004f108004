"""A small OpenID provider for the tests, served on loopback: discovery, authorize, token (PKCE S256), JWKS.

`/authorize` signs in whoever the test names in `next_user` (no login page) and redirects back with a code;
`/token` checks the code, the client, the redirect URI and the PKCE verifier, and answers with an RS256 ID token
carrying the `nonce` of the authorization request and the user's `groups`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

CLIENT_ID = "rayweave-ui"


@dataclass
class Provider:
    """The provider's state: its key, issued codes, the user the next sign-in is for, what it was asked."""

    issuer: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_user: tuple[str, list[str]] = ("ada", ["rw-editors"])
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}


def provider_app(provider: Provider) -> FastAPI:
    """The provider's endpoints over `provider`."""
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return provider.jwks()

    @app.get("/authorize")
    def authorize(
        client_id: str,
        redirect_uri: str,
        response_type: str,
        state: str,
        code_challenge: str,
        code_challenge_method: str,
        nonce: str = "",
        scope: str = "",
    ) -> RedirectResponse:
        if client_id != CLIENT_ID or response_type != "code" or code_challenge_method != "S256":
            raise HTTPException(400, "bad authorization request")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {
            "challenge": code_challenge,
            "nonce": nonce,
            "redirect_uri": redirect_uri,
            "user": provider.next_user,
            "scope": scope,
        }
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302
        )

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant_type, code = form.get("grant_type", ""), form.get("code", "")
        redirect_uri, code_verifier = form.get("redirect_uri", ""), form.get("code_verifier", "")
        client_id = form.get("client_id", "")
        provider.token_requests.append({"code": code, "code_verifier": code_verifier, "client_id": client_id})
        issued = provider.codes.pop(code, None)
        if grant_type != "authorization_code" or issued is None or client_id != CLIENT_ID:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = hashlib.sha256(code_verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != issued["challenge"]:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "PKCE verifier"}, status_code=400
            )
        if redirect_uri != issued["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        user, groups = issued["user"]
        now = int(time.time())
        claims = {
            "iss": provider.issuer,
            "aud": CLIENT_ID,
            "sub": user,
            "iat": now,
            "exp": now + 300,
            "nonce": issued["nonce"],
            "groups": groups,
        }
        id_token = jwt.encode(claims, provider.key, algorithm="RS256", headers={"kid": "k1"})
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})

    return app
