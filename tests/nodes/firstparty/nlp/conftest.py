"""Fixtures of the NLP plugin's tests: the plugin loaded in its own runtime environment on the session Ray,
and a small OpenAI-compatible endpoint served on loopback by a real HTTP server in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nodes.plugins.remote import PluginNodeDefinition

NLP_PLUGIN = Path(__file__).resolve().parents[4] / "nodes" / "firstparty" / "nlp"
#: The API key of the fake endpoint; it must never show up in anything a node returns, logs or raises.
API_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
API_KEY_ENV = "NLP_TEST_API_KEY"


def with_worker_env(definition: PluginNodeDefinition, **env_vars: str) -> PluginNodeDefinition:
    """The same plugin node whose workers also have `env_vars` (how a cluster's workers get an API key)."""
    runtime_env = dict(definition.runtime_env)
    runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **env_vars}
    return PluginNodeDefinition(
        definition.spec,
        module=definition.module_name,
        attribute=definition.attribute,
        runtime_env=runtime_env,
        plugin_ref=definition.plugin_ref,
        example=definition.example,
    )


@pytest.fixture(scope="session")
def nlp_nodes(ray_session: Any) -> dict[str, PluginNodeDefinition]:
    """The NLP plugin's node definitions, read inside its runtime environment, by type id."""
    from nodes.plugins.testing import load_plugin

    return load_plugin(NLP_PLUGIN)


class FakeLLM(BaseHTTPRequestHandler):
    """`POST /v1/chat/completions`, answering by the requested model:

    - `echo`: the user message and the Authorization header it got, back as the reply;
    - `slow`: waits 3 s first; `not-json`: a 200 that is not JSON; `no-choices`: JSON without choices;
    - `deny`: 401 whose body quotes the Authorization header (as careless servers do);
    - a prompt containing `FAIL`: 500;
    - anything else: `Hello from <model>` with token counts.
    """

    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        auth = self.headers.get("Authorization", "")
        self.server.requests.append({"path": self.path, "auth": auth, "body": request})
        if self.path != "/v1/chat/completions":
            self._send(404, b'{"error": "not found"}')
            return
        model = request.get("model")
        prompt = request["messages"][-1]["content"]
        if model == "slow":
            time.sleep(3)
        if model == "not-json":
            self._send(200, b"<html>gateway says hi</html>")
            return
        if model == "no-choices":
            self._send(200, b'{"object": "chat.completion", "choices": []}')
            return
        if "FAIL" in prompt:
            self._send(500, b'{"error": "upstream exploded"}')
            return
        if model == "deny":
            self._send(401, json.dumps({"error": f"invalid key in header: {auth}"}).encode())
            return
        text = f"you said {prompt!r}; auth was {auth!r}" if model == "echo" else f"Hello from {model}"
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
        self._send(200, json.dumps(answer).encode())


class FakeServer(ThreadingHTTPServer):
    """The fake endpoint's server; `requests` records what each call received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeLLM)
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """The base URL to configure, as OpenAI clients take it (`.../v1`)."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeServer]:
    """A real HTTP server on 127.0.0.1 speaking the chat completions API (see `FakeLLM`)."""
    server = FakeServer()
    thread = threading.Thread(target=server.serve_forever, name="fake-llm", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
