"""http_request against a local HTTP server started in the test on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nodes.builtin import http
from nodes.builtin.errors import HttpRequestError, ParamValueError
from nodes.testing import run_node


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may have given up already (the timeout test): nothing is left to answer then.
        with contextlib.suppress(BrokenPipeError):
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/json":
            self._reply(
                200,
                json.dumps({"ok": True, "agent": self.headers.get("X-Test")}).encode(),
                "application/json",
            )
        elif self.path == "/slow":
            time.sleep(0.6)
            self._reply(200, b"late", "text/plain")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, b"no such page", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._reply(201, b"got:" + body, "text/plain; charset=utf-8")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_get_json_with_headers(base_url: str) -> None:
    out = run_node(http.http_request, {"url": f"{base_url}/json", "headers": {"X-Test": "rayweave"}})
    assert out["status"] == 200
    assert out["json"] == {"ok": True, "agent": "rayweave"}
    assert out["headers"]["content-type"] == "application/json"


def test_post_body(base_url: str) -> None:
    out = run_node(http.http_request, {"url": f"{base_url}/echo", "body": "héllo"}, {"method": "post"})
    assert out["status"] == 201 and out["text"] == "got:héllo" and out["json"] is None


def test_follows_redirects(base_url: str) -> None:
    assert run_node(http.http_request, {"url": f"{base_url}/redirect"})["json"]["ok"] is True


def test_error_status_fails_unless_asked_not_to(base_url: str) -> None:
    with pytest.raises(HttpRequestError, match=r"answered 404 Not Found: 'no such page'"):
        run_node(http.http_request, {"url": f"{base_url}/missing"})
    out = run_node(http.http_request, {"url": f"{base_url}/missing"}, {"raise_for_status": False})
    assert out["status"] == 404 and out["text"] == "no such page"


def test_timeout_is_reported_with_the_param_to_raise(base_url: str) -> None:
    with pytest.raises(HttpRequestError, match=r"timed out after 0.2 s; raise param 'timeout_s'"):
        run_node(http.http_request, {"url": f"{base_url}/slow"}, {"timeout_s": 0.2})


def test_unreachable_server_is_a_connection_error() -> None:
    # Port 9 (discard) on loopback is closed on a test machine: the connection is refused at once.
    with pytest.raises(ConnectionError, match=r"failed"):
        run_node(http.http_request, {"url": "http://127.0.0.1:9/"}, {"timeout_s": 2.0})


def test_bad_params_and_url() -> None:
    with pytest.raises(ParamValueError, match=r"'method' is 'FETCH'"):
        run_node(http.http_request, {"url": "http://127.0.0.1:9/"}, {"method": "FETCH"})
    with pytest.raises(HttpRequestError, match=r"failed|not a valid URL"):
        run_node(http.http_request, {"url": "notaurl"})


def test_spec_marks_an_external_uncached_node() -> None:
    spec = http.http_request.spec
    assert spec.deterministic is False and spec.cache is False and "external" in spec.tags
