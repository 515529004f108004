"""Nodes of the secrets tests (importable by Ray workers): a secret used, logged, leaked, failed on; and
outputs with a marker for the encryption-at-rest tests."""

from __future__ import annotations

import hashlib

import pyarrow as pa

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


MARKER = "CLEAR-TEXT-MARKER-42"


@node(plugin="secrettest")
def confidential_table(n: int) -> pa.Table:
    """A table whose text column holds a marker that must not be readable on disk."""
    return pa.table({"id": list(range(n)), "note": [f"{MARKER}-{i}" for i in range(n)]})


@node(plugin="secrettest")
def describe(table: pa.Table) -> str:
    """A string output holding the marker."""
    return f"{MARKER}: {table.num_rows} rows"
