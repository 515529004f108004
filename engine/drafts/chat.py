"""The OpenAI-compatible chat completions endpoint drafts are asked of: where it is, which model, which key.

Settings (`cluster.settings.Settings`): `draft_base_url` and `draft_model`, falling back to `llm_base_url` and
`llm_model` (those of `nlp/generate@1`); `draft_api_key`, the key itself or `secret:USERNAME/NAME`, a reference
to a secret of that user in the secrets store (docs/guides/secrets.md), opened here with the installation's
master key. The key is sent only in the `Authorization` header and never appears in an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from engine.drafts.errors import DraftConfigError, DraftEndpointError

if TYPE_CHECKING:
    import httpx

    from cluster.settings import Settings
    from engine.store import Store

#: The prefix of a `draft_api_key` that names a secret instead of being the key.
SECRET_PREFIX = "secret:"
_VERSIONED = re.compile(r"/v\d+$")


@dataclass(frozen=True, repr=False)
class ChatEndpoint:
    """A resolved endpoint: its chat completions URL, the model, the key (never shown) and the timeout."""

    url: str
    model: str
    key: str = ""
    timeout_s: float = 60.0

    def __repr__(self) -> str:
        return f"ChatEndpoint({shown(self.url)!r}, model={self.model!r})"

    def redact(self, text: str) -> str:
        """`text` with the key replaced by `[redacted]` (servers echo headers in their errors)."""
        return text.replace(self.key, "[redacted]") if self.key else text


def shown(url: str) -> str:
    """`url` without user info or query string (where credentials hide), for messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def completions_url(base_url: str) -> str:
    """`{base}/chat/completions` when the base ends with a version (`/v1`), else `{base}/v1/chat/completions`."""
    base = base_url.strip().rstrip("/")
    return f"{base}/chat/completions" if _VERSIONED.search(base) else f"{base}/v1/chat/completions"


def endpoint_from(settings: Settings, store: Store | None = None) -> ChatEndpoint:
    """The endpoint the settings name; `store` opens a `secret:USERNAME/NAME` key. `DraftConfigError` names the
    setting to fix when something is missing."""
    base = settings.draft_base_url or settings.llm_base_url
    if not base:
        raise DraftConfigError(
            "no model endpoint is configured for drafts: set RAYWEAVE_DRAFT_BASE_URL (or RAYWEAVE_LLM_BASE_URL)"
            " to an OpenAI-compatible API, e.g. https://api.openai.com/v1"
        )
    model = settings.draft_model or settings.llm_model
    if not model:
        raise DraftConfigError(
            "no model is configured for drafts: set RAYWEAVE_DRAFT_MODEL (or RAYWEAVE_LLM_MODEL)"
        )
    given = settings.draft_api_key.get_secret_value() if settings.draft_api_key is not None else ""
    key = (
        _secret_key(settings, store, given[len(SECRET_PREFIX) :])
        if given.startswith(SECRET_PREFIX)
        else given
    )
    return ChatEndpoint(completions_url(base), model, key, settings.draft_timeout_s)


def _secret_key(settings: Settings, store: Store | None, reference: str) -> str:
    """The value of the secret `USERNAME/NAME`."""
    from engine.secrets import MasterKeyError, SecretError, SecretsService, key_provider
    from engine.store import NotFoundError

    username, _, name = reference.partition("/")
    if not username or not name:
        raise DraftConfigError(
            f"RAYWEAVE_DRAFT_API_KEY secret:{reference}: write secret:USERNAME/NAME (a secret of that user)"
        )
    if store is None:
        raise DraftConfigError("RAYWEAVE_DRAFT_API_KEY names a secret, which needs the installation's store")
    try:
        owner = store.users.get_by_username(username).id
        return SecretsService(store, key_provider(settings)).reveal(owner, name)
    except (NotFoundError, KeyError):
        raise DraftConfigError(
            f"RAYWEAVE_DRAFT_API_KEY names secret {name!r} of user {username!r}, which does not exist; store it"
            f" with `rayweave secrets set {name} --user {username}`"
        ) from None
    except (MasterKeyError, SecretError) as exc:
        raise DraftConfigError(
            f"RAYWEAVE_DRAFT_API_KEY: secret {name!r} of user {username!r} cannot be opened: {exc}"
        ) from None


def complete(
    endpoint: ChatEndpoint, messages: Sequence[Mapping[str, str]], *, client: httpx.Client | None = None
) -> str:
    """The text of the model's answer to `messages` (`DraftEndpointError` saying what went wrong otherwise)."""
    import httpx

    body = {"model": endpoint.model, "messages": list(messages), "temperature": 0}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.key:
        headers["Authorization"] = f"Bearer {endpoint.key}"
    where = f"the model endpoint {shown(endpoint.url)}"
    owned = client is None
    # trust_env off: no proxy settings or .netrc credentials of the process reach the request.
    http = client or httpx.Client(timeout=endpoint.timeout_s, trust_env=False)
    failure = ""
    try:
        response = http.post(endpoint.url, content=json.dumps(body).encode(), headers=headers)
    except httpx.TimeoutException:
        failure = f"{where} did not answer within {endpoint.timeout_s} s (RAYWEAVE_DRAFT_TIMEOUT_S)"
    except httpx.HTTPError as exc:
        failure = (
            f"cannot reach {where}: {type(exc).__name__}: {exc}; check RAYWEAVE_DRAFT_BASE_URL and that the"
            " server is up"
        )
    finally:
        if owned:
            http.close()
    if failure:
        raise DraftEndpointError(endpoint.redact(failure))  # without its cause: httpx's carries the headers
    return _content(endpoint, where, response)


def _content(endpoint: ChatEndpoint, where: str, response: Any) -> str:
    snippet = endpoint.redact(response.text[:300])
    if response.status_code >= 400:
        hint = "; check RAYWEAVE_DRAFT_API_KEY" if response.status_code in (401, 403) else ""
        raise DraftEndpointError(
            f"{where} answered {response.status_code} {response.reason_phrase}: {snippet!r}{hint}"
        )
    try:
        answer = json.loads(response.text)
    except ValueError:
        answer = None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise DraftEndpointError(
            f"{where} answered without a text at choices[0].message.content ({snippet!r}); is it an"
            " OpenAI-compatible chat completions API?"
        )
    return content
