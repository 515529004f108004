"""gzip for the API's JSON answers, for clients that accept it (`Accept-Encoding: gzip`).

The node catalog the web UI reads on every page load is 133 KB of JSON and 22 KB gzipped (a sixth). Only a
JSON answer sent whole (one body message: FastAPI's JSON responses, problem documents) of at least
`MIN_GZIP_BYTES` is compressed. Everything else passes through untouched: WebSockets (not HTTP), event streams
(SSE) and NDJSON exports (other media types, and sent in several body messages, which are never held back),
answers that already carry a `Content-Encoding` (the web UI's assets, `serve.ui.routes`) and HEAD requests.
Predictions (`/v2`, the Open Inference Protocol) are left as they are too: the same routes answer uncompressed at
a model's fast path (`serve.models.fastpath`), and a prediction's time is better not spent compressing.
Plain ASGI, like `serve.middleware`, so nothing is buffered that was not already whole.

An answer's `ETag` is kept as it is: it names the stored version (a workflow's number), the same whichever the
encoding, and clients send it back in `If-Match` after decompressing.
"""

from __future__ import annotations

import gzip

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MIN_GZIP_BYTES", "JsonGzipMiddleware", "accepts_gzip"]

#: Answers smaller than this are sent as they are (compressing gains less than it costs).
MIN_GZIP_BYTES = 1024
#: Answers larger than this are compressed in a worker thread, not on the event loop (about 2 ms per 130 KB).
THREAD_GZIP_BYTES = 256 * 1024
#: Paths whose answers are never compressed (predictions; see the module docstring).
SKIPPED = ("/v2/",)
#: The node catalog (133 KB of JSON) at level 3: 22 KB in 2.2 ms; at 6 (zlib's default) 19 KB in 5.2 ms, at 9
#: 19 KB in 9 ms (2 cores, load 8.6). Level 3 is within a fifth of the smallest at well under half the time.
GZIP_LEVEL = 3


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` header's value allows gzip (a `q=0` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            params = params.strip().replace(" ", "")
            try:
                return not params.startswith("q=") or float(params[2:]) > 0
            except ValueError:
                return False
    return False


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class JsonGzipMiddleware:
    """Compresses whole JSON answers for clients that accept gzip; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, minimum_bytes: int = MIN_GZIP_BYTES, skip_prefixes: tuple[str, ...] = SKIPPED
    ) -> None:
        self.app = app
        self.minimum_bytes = minimum_bytes
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") == "HEAD"
            or str(scope.get("path", "")).startswith(self.skip_prefixes)
            or not _accepts(scope)
        ):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        passing = False

        async def compressing_send(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = {bytes(k).lower(): bytes(v) for k, v in message.get("headers", [])}
                if b"content-encoding" in headers or not _is_json(headers.get(b"content-type", b"")):
                    passing = True
                    await send(message)
                else:
                    start = message  # held until the body shows whether the answer is whole
                return
            held, start, passing = start, None, True
            if held is None:
                await send(message)
                return
            body = bytes(message.get("body", b"")) if message["type"] == "http.response.body" else b""
            # Not a body (a file sent by path), a stream, or too small: as it is.
            if (
                message["type"] != "http.response.body"
                or message.get("more_body", False)
                or len(body) < self.minimum_bytes
            ):
                await send(held)
                await send(message)
                return
            if len(body) > THREAD_GZIP_BYTES:
                packed = await run_in_threadpool(gzip.compress, body, GZIP_LEVEL, mtime=0)
            else:
                packed = gzip.compress(body, GZIP_LEVEL, mtime=0)
            if len(packed) >= len(body):
                await send(held)
                await send(message)
                return
            await send({**held, "headers": _gzip_headers(held.get("headers", []), len(packed))})
            await send({"type": "http.response.body", "body": packed})

        await self.app(scope, receive, compressing_send)


def _accepts(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if bytes(key).lower() == b"accept-encoding":
            return accepts_gzip(bytes(value).decode("latin-1"))
    return False


def _gzip_headers(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """`headers` of a compressed answer: its encoding and length, and `Vary: Accept-Encoding`."""
    out: list[tuple[bytes, bytes]] = []
    vary = b""
    for key, value in headers:
        name = bytes(key).lower()
        if name == b"content-length":
            continue
        if name == b"vary":
            vary = bytes(value)
            continue
        out.append((key, value))
    if b"accept-encoding" not in vary.lower() and vary.strip() != b"*":
        vary = vary + b", Accept-Encoding" if vary.strip() else b"Accept-Encoding"
    out += [(b"content-encoding", b"gzip"), (b"content-length", str(length).encode()), (b"vary", vary)]
    return out
