"""The OpenAI-compatible endpoint of `nlp/generate@1`: where it is, which model, which key, and the call.

Where the settings come from: a node's params win; an empty param falls back to the installation's settings,
which reach the node in its run context's config (`nodes.context.current().config`, made from `Settings` by
the process that starts the run): `llm.base_url`, `llm.model` and `llm.api_key_env`, from the settings
`llm_base_url`, `llm_model` and `llm_api_key_env` (`RAYWEAVE_LLM_BASE_URL`, `RAYWEAVE_LLM_MODEL`,
`RAYWEAVE_LLM_API_KEY_ENV`). The node never reads `RAYWEAVE_*` variables of its worker.

The API key itself is never a param, a setting value or part of a workflow: it is read inside the worker from
the environment variable the setting names (default `OPENAI_API_KEY`), sent only in the `Authorization`
header, and removed from everything the node returns, logs or raises (`Endpoint.redact`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rayweave_nlp.errors import LlmEndpointError, NlpParamError

NODE = "nlp/generate@1"
#: The keys of the run context's config this node reads (`engine.execution.nodeconfig` fills them).
BASE_URL_KEY = "llm.base_url"
MODEL_KEY = "llm.model"
KEY_ENV_KEY = "llm.api_key_env"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
REDACTED = "[redacted]"
_VERSIONED = re.compile(r"/v\d+$")


@dataclass(frozen=True, repr=False)
class Endpoint:
    """A resolved endpoint: the chat completions URL, the model, and the key (never printed: no repr)."""

    url: str
    model: str
    key_env: str
    key: str
    node: str = NODE

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the API key replaced by ``[redacted]``."""
        return text.replace(self.key, REDACTED) if self.key else text


def shown(url: str) -> str:
    """`url` for messages and logs: without user info or query string, where credentials could hide."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def completions_url(base_url: str) -> str:
    """``{base}/chat/completions`` when the base ends with a version (``/v1``), else ``{base}/v1/chat/completions``."""
    base = base_url.strip().rstrip("/")
    return f"{base}/chat/completions" if _VERSIONED.search(base) else f"{base}/v1/chat/completions"


def resolve(
    base_url: str,
    model: str,
    api_key_env: str,
    config: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    *,
    node: str = NODE,
    api_key: str = "",
) -> Endpoint:
    """The endpoint from the params, falling back to the installation's settings (the run's `config`); the
    key given (`api_key`: a secret the engine resolved from `{"secret": "name"}`), else from the worker's
    environment (`environ`, default `os.environ`)."""
    env = os.environ if environ is None else environ
    base = base_url or config.get(BASE_URL_KEY, "")
    if not base:
        raise NlpParamError(
            f"{node}: no endpoint: set param 'base_url' (e.g. https://api.openai.com/v1) or the setting "
            "llm_base_url (RAYWEAVE_LLM_BASE_URL) of the installation"
        )
    if not base.startswith(("http://", "https://")):
        raise NlpParamError(f"{node}: param 'base_url' {shown(base)!r} is not an http:// or https:// URL")
    name = model or config.get(MODEL_KEY, "")
    if not name:
        raise NlpParamError(
            f"{node}: no model: set param 'model' or the setting llm_model (RAYWEAVE_LLM_MODEL) of the installation"
        )
    if api_key:
        return Endpoint(
            url=completions_url(base), model=name, key_env="given as param 'api_key'", key=api_key, node=node
        )
    key_env = api_key_env or config.get(KEY_ENV_KEY, "") or DEFAULT_KEY_ENV
    key = env.get(key_env, "")
    return Endpoint(url=completions_url(base), model=name, key_env=key_env, key=key, node=node)


def request_body(
    endpoint: Endpoint, prompt: str, system: str | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON body of a chat completion: the system message (if any), the prompt, and the set options."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    body: dict[str, Any] = {"model": endpoint.model, "messages": messages}
    body.update({name: value for name, value in options.items() if value is not None})
    return body


def _fail(endpoint: Endpoint, message: str) -> LlmEndpointError:
    return LlmEndpointError(endpoint.redact(f"{endpoint.node}: POST {shown(endpoint.url)} {message}"))


def open_client(transport: Any, timeout_s: float) -> Any:
    """An `httpx.Client` over `transport` (the run's guarded one), ignoring the worker's proxy settings."""
    import httpx

    # trust_env off: no proxy or .netrc credentials from the worker's environment reach the request.
    return httpx.Client(transport=transport, trust_env=False, timeout=timeout_s)


def call(endpoint: Endpoint, body: dict[str, Any], *, client: Any, timeout_s: float) -> dict[str, Any]:
    """POST `body` to the endpoint with `client` (`open_client`) and return the parsed JSON answer; clear
    errors otherwise.

    Errors are raised without their cause: httpx's exceptions carry the request, headers included, and
    nothing holding the key may travel with a node's error.
    """
    import httpx

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.key:
        headers["Authorization"] = f"Bearer {endpoint.key}"
    failure: str | None = None
    try:
        response = client.post(endpoint.url, content=json.dumps(body).encode(), headers=headers)
    except httpx.TimeoutException:
        failure = f"timed out after {timeout_s} s; raise param 'timeout_s' or check that the endpoint is up"
    except httpx.ConnectError as exc:
        failure = (
            f"could not connect ({exc}); check param 'base_url' (or the setting llm_base_url) and that the "
            "server is running"
        )
    except httpx.HTTPError as exc:
        failure = f"failed: {type(exc).__name__}: {exc}"
    if failure is not None:
        raise _fail(endpoint, failure)
    return _answer(endpoint, response)


def _answer(endpoint: Endpoint, response: Any) -> dict[str, Any]:
    snippet = response.text[:300]
    if response.status_code >= 400:
        hint = (
            f"; check the API key in the environment variable {endpoint.key_env} (setting llm_api_key_env)"
            if response.status_code in (401, 403)
            else ""
        )
        raise _fail(endpoint, f"answered {response.status_code} {response.reason_phrase}: {snippet!r}{hint}")
    try:
        answer = json.loads(response.text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise _fail(
            endpoint,
            f"answered {response.status_code} with a body that is not a JSON object ({snippet!r}); is param "
            "'base_url' an OpenAI-compatible API?",
        )
    return answer


def first_message(endpoint: Endpoint, answer: Mapping[str, Any]) -> tuple[str, str]:
    """(content, finish_reason) of the answer's first choice; a clear error when the answer has none."""
    choices = answer.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message") if isinstance(first.get("message"), dict) else {}
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        excerpt = endpoint.redact(json.dumps(answer)[:300])
        raise LlmEndpointError(
            f"{endpoint.node}: POST {shown(endpoint.url)} answered JSON without a text at choices[0].message.content ({excerpt}); "
            "is param 'base_url' an OpenAI-compatible chat completions API?"
        )
    return content, str(first.get("finish_reason") or "")
