"""`serve.compression`: whole JSON answers gzip-compressed for clients that accept it, everything else untouched;
a small app served on loopback, read with httpx."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from serve.compression import JsonGzipMiddleware, accepts_gzip
from tests.serve.api.server import serving

BIG = {"items": [{"id": f"node-{i}", "description": "a node of the catalog"} for i in range(200)]}


@pytest.fixture(scope="module")
def gate() -> threading.Event:
    """Holds the streamed answer's second chunk until the test has read its first."""
    return threading.Event()


@pytest.fixture(scope="module")
def url(gate: threading.Event) -> Iterator[str]:
    async def stream(_: object) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"items": [' + b'"x",' * 600
            await anyio.to_thread.run_sync(gate.wait, 30)
            yield b'"y"]}'

        return StreamingResponse(chunks(), media_type="application/json")

    routes = [
        Route("/big", lambda _: JSONResponse(BIG, headers={"ETag": '"7"'})),
        Route("/v2/big", lambda _: JSONResponse(BIG)),
        Route("/small", lambda _: JSONResponse({"ok": True})),
        Route("/problem", lambda _: Response(json.dumps(BIG), 422, media_type="application/problem+json")),
        Route("/text", lambda _: Response("a line\n" * 500, media_type="text/plain")),
        Route("/stream", stream),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(JsonGzipMiddleware)
    with serving(app) as served:
        yield served


def test_accept_encoding_is_read_as_browsers_send_it() -> None:
    assert accepts_gzip("gzip, deflate, br") and accepts_gzip("br;q=1.0, gzip;q=0.5") and accepts_gzip("*")
    for refused in ("", "identity", "gzip;q=0", "gzip; q=0.0", "br", "gzip;q=x"):
        assert not accepts_gzip(refused), refused


def test_a_big_json_answer_is_gzipped_when_asked_and_plain_otherwise(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in ("/big", "/problem"):
            packed = client.get(path, headers={"Accept-Encoding": "gzip"})
            assert packed.headers["content-encoding"] == "gzip", path
            assert packed.headers["vary"] == "Accept-Encoding"
            assert int(packed.headers["content-length"]) < len(json.dumps(BIG)) / 5
            assert packed.json() == BIG  # httpx decompresses
        packed = client.get("/big", headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers["etag"] == '"7"'
        # On the wire: a gzip member of the JSON, nothing else.
        with client.stream("GET", "/big", headers={"Accept-Encoding": "gzip"}) as raw:
            assert json.loads(gzip.decompress(b"".join(raw.iter_raw()))) == BIG
        for refused in ("identity", "gzip;q=0"):
            plain = client.get("/big", headers={"Accept-Encoding": refused})
            assert "content-encoding" not in plain.headers and plain.json() == BIG, refused
        # Small answers, other media types, predictions (/v2) and HEAD requests as they are.
        for path in ("/small", "/text", "/v2/big"):
            answer = client.get(path, headers={"Accept-Encoding": "gzip"})
            assert answer.status_code == 200 and "content-encoding" not in answer.headers, path
        head = client.head("/big", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in head.headers


def test_a_streamed_json_answer_streams_uncompressed(url: str, gate: threading.Event) -> None:
    # The first chunk arrives while the app still holds the second: nothing is buffered to compress it.
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("GET", "/stream", headers={"Accept-Encoding": "gzip"}) as answer,
    ):
        assert "content-encoding" not in answer.headers
        chunks = answer.iter_raw()
        first = next(chunks)
        assert first.startswith(b'{"items": [') and b'"y"' not in first and not gate.is_set()
        gate.set()
        rest = b"".join(chunks)
    assert json.loads(first + rest)["items"][-1] == "y"
