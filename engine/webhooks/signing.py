"""Signing webhook deliveries the way the Standard Webhooks specification says (https://www.standardwebhooks.com).

Each delivery carries three headers:

- `webhook-id`: the delivery's id, the same on every retry (receivers use it to drop duplicates);
- `webhook-timestamp`: the Unix time of this attempt, in seconds;
- `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the
  secret's key (the base64 text after the `whsec_` prefix, decoded). Several signatures may be listed,
  separated by spaces (a receiver accepts any that matches).

`verify` is what a receiver runs (docs/guides/webhooks.md shows it in a few lines without rayweave).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

__all__ = ["PREFIX", "SignatureError", "new_secret", "sign", "signature_headers", "verify"]

#: The prefix of a signing secret's text.
PREFIX = "whsec_"
#: How far a timestamp may be from the receiver's clock (seconds) before `verify` refuses it (replays).
TOLERANCE_S = 300
_KEY_BYTES = 32


class SignatureError(ValueError):
    """A delivery's signature does not verify (missing header, stale timestamp, no matching signature)."""


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a delivery."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (timestamp: now)."""
    when = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(when),
        "webhook-signature": sign(secret, msg_id, when, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a delivery as a receiver would; raises `SignatureError` saying what is wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, stamp, signatures = (
            lowered["webhook-id"],
            lowered["webhook-timestamp"],
            lowered["webhook-signature"],
        )
    except KeyError as exc:
        raise SignatureError(f"the {exc.args[0]} header is missing") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {stamp[:20]!r} is not a Unix time in seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(f"webhook-timestamp is more than {tolerance_s} s away from now (a replay?)")
    expected = sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split()):
        raise SignatureError(
            "no signature in webhook-signature matches the body (wrong secret or altered body)"
        )
