"""A scripted OpenAI-compatible chat completions endpoint on loopback (a real HTTP server in a thread).

The script is chosen by a word in the first user message (the description):

- `VALID`: a valid workflow at once (inside a ```json fence, after some prose, as chat models answer);
- `REPAIR`: first a workflow binding an unknown port, then, once the compiler's RW102 came back, a valid one;
- `NEVER`: always the same invalid workflow;
- `DROP`: closes the connection without answering.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def add_workflow(port: str = "a") -> dict[str, Any]:
    """total = a + b, with the first input bound to `port` (`a` is right, anything else an unknown port)."""
    return {
        "format": "rayweave.workflow/1",
        "name": "add-two",
        "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
        "nodes": {"sum": {"type": "builtin/add@1", "in": {port: "$inputs.a", "b": "$inputs.b"}}},
        "outputs": {"total": "sum"},
    }


class _Handler(BaseHTTPRequestHandler):
    server: FakeChat

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        messages = body["messages"]
        description = next(m["content"] for m in messages if m["role"] == "user")
        if "DROP" in description:
            self.close_connection = True
            self.connection.close()
            return
        if "VALID" in description:
            text = "Here it is:\n```json\n" + json.dumps(add_workflow()) + "\n```\nEnjoy."
        elif "REPAIR" in description:
            repaired = any("RW102" in m["content"] for m in messages if m["role"] == "user")
            text = json.dumps(add_workflow("a" if repaired else "first"))
        else:
            text = json.dumps(add_workflow("first"))
        answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeChat(ThreadingHTTPServer):
    """The fake endpoint; `requests` records each call (path, Authorization header, JSON body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """The base URL to configure (`.../v1`)."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@contextmanager
def fake_chat() -> Iterator[FakeChat]:
    """Serve a `FakeChat` until the block ends."""
    server = FakeChat()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
