"""Nodes that take a secret param (importable by Ray workers): use it, log it, leak it, fail on it."""

from __future__ import annotations

import hashlib

from nodes import context, node


@node(plugin="secrettest")
def call_api(text: str, *, token: str) -> str:
    """Use the token as a client would (its digest stands for a signed request); log it carelessly."""
    context.current().logger.info("calling the API with token %s", token)
    context.current().progress(0.5, f"authenticated as {token[:2]}... with {token}")
    return f"{text}:{hashlib.sha256(token.encode()).hexdigest()[:12]}"


@node(plugin="secrettest")
def leak(text: str, *, token: str) -> str:
    """Return the secret as an output (refused by the engine)."""
    return f"{text} {token}"


@node(plugin="secrettest")
def fail_loudly(text: str, *, token: str) -> str:
    """Fail with the secret in the message (the message is redacted)."""
    raise ValueError(f"the server refused token {token} for {text}")
