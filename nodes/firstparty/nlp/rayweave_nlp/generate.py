"""Text generation through an OpenAI-compatible chat completions endpoint: `nlp/generate@1` for one prompt,
`nlp/generate_rows@1` for one prompt per row of a table.

Any server speaking OpenAI's `POST /v1/chat/completions` works: OpenAI, vLLM, llama.cpp's server, Ollama,
LiteLLM. The call goes through the run's access policy like `builtin/http_request@1`: an endpoint on an
internal address (loopback, private networks) needs the installation's allowlist (`RAYWEAVE_HTTP_ALLOW`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypedDict

import pyarrow as pa

from nodes import context, node
from nodes.builtin.netguard import guarded_transport
from rayweave_nlp import llm
from rayweave_nlp.errors import LlmEndpointError, NlpParamError
from rayweave_nlp.tables import TableOut, append_columns, check_names, require_free, text_values


class Generation(TypedDict):
    """The outputs of `nlp/generate@1`."""

    text: str
    finish_reason: str
    model: str
    usage: dict[str, int]


@node(
    plugin="nlp",
    version="1.0.0",
    category="nlp",
    tags=("external", "network", "llm"),
    deterministic=False,
    cache=False,
    io_bound=True,  # it waits on the endpoint: on Ray it runs on the warm pool of threaded actors
)
def generate(
    prompt: str,
    system: str | None = None,
    *,
    base_url: str = "",
    model: str = "",
    api_key_env: str = "",
    api_key: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout_s: float = 60.0,
) -> Generation:
    """Generate text with a chat model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    An external resource: non-deterministic, never cached, tagged ``external`` so the engine's circuit
    breaker and retry policy apply. The endpoint is reached through the run's access policy, as by
    ``builtin/http_request@1``: internal addresses (loopback, private networks) only when the installation
    allows them (``RAYWEAVE_HTTP_ALLOW``). The API key is read in the worker from an environment variable and
    never appears in the node's outputs, logs or errors.

    Args:
        prompt: the user message.
        system: a system message sent before it (optional, default null: none).
        base_url: the API's base URL, e.g. ``https://api.openai.com/v1`` or ``http://10.0.0.5:8000``;
            ``/chat/completions`` is appended when it ends with a version such as ``/v1``, else
            ``/v1/chat/completions``. Default empty: the installation's setting ``llm_base_url``
            (``RAYWEAVE_LLM_BASE_URL``); with neither, the node fails.
        model: the model name the endpoint knows (default empty: the setting ``llm_model``,
            ``RAYWEAVE_LLM_MODEL``); with neither, the node fails.
        api_key_env: the name of the environment variable of the worker holding the API key (default empty:
            the setting ``llm_api_key_env``, ``RAYWEAVE_LLM_API_KEY_ENV``, else ``OPENAI_API_KEY``). When the
            variable is unset or empty no ``Authorization`` header is sent (local servers need none).
        api_key: the API key itself, given by reference to the secrets store: ``{"secret": "openai"}``
            (resolved in the worker for the run's owner; never write a key in a document). When set, it is
            used instead of ``api_key_env``.
        temperature: sampling temperature (default null: the server's default).
        max_tokens: the most tokens to generate (default null: the server's default); must be >= 1.
        timeout_s: seconds to wait for connecting and, separately, for each read (default 60.0); must be
            > 0. A timeout fails the node.

    Returns:
        text: the generated message (the first choice's ``message.content``).
        finish_reason: why generation stopped (``stop``, ``length``...; empty if the server did not say).
        model: the model that answered (as the server names it; the requested one if it did not say).
        usage: the server's token counts (``prompt_tokens``, ``completion_tokens``, ``total_tokens``);
            empty when it sent none.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "summarize",
          "inputs": {"article": {"type": "String"}},
          "nodes": {"llm": {"type": "nlp/generate@1", "in": {"prompt": "$inputs.article",
                            "system": {"value": "Summarize in one sentence."}},
                            "params": {"max_tokens": 60, "timeout_s": 30},
                            "retry": {"max_attempts": 3, "backoff": "exponential", "initial_s": 1}}},
          "outputs": {"summary": "llm.text"}
        }
        ```
    """
    ctx = context.current()
    endpoint = _endpoint(llm.NODE, base_url, model, api_key_env, timeout_s, max_tokens, api_key)
    ctx.logger.info("POST %s (model %s)", llm.shown(endpoint.url), endpoint.model)
    body = llm.request_body(endpoint, prompt, system, {"temperature": temperature, "max_tokens": max_tokens})
    with llm.open_client(
        guarded_transport(ctx.policy, f"{endpoint.node}: param 'base_url'"), timeout_s
    ) as client:
        answer = llm.call(endpoint, body, client=client, timeout_s=timeout_s)
    text, finish_reason = llm.first_message(endpoint, answer)
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return {
        "text": endpoint.redact(text),
        "finish_reason": finish_reason,
        "model": str(answer.get("model") or endpoint.model),
        "usage": {str(k): int(v) for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)},
    }


def _endpoint(
    node_id: str,
    base_url: str,
    model: str,
    api_key_env: str,
    timeout_s: float,
    max_tokens: int | None,
    api_key: str = "",
) -> llm.Endpoint:
    """The checked params' endpoint (see `rayweave_nlp.llm.resolve`)."""
    if timeout_s <= 0:
        raise NlpParamError(f"{node_id}: param 'timeout_s' is {timeout_s}; use a number > 0")
    if max_tokens is not None and max_tokens < 1:
        raise NlpParamError(f"{node_id}: param 'max_tokens' is {max_tokens}; use a number >= 1 (or null)")
    return llm.resolve(base_url, model, api_key_env, context.current().config, node=node_id, api_key=api_key)


@node(
    plugin="nlp",
    version="1.0.0",
    category="nlp",
    tags=("external", "network", "llm", "table"),
    deterministic=False,
    cache=False,
    io_bound=True,
)
def generate_rows(
    table: pa.Table,
    *,
    column: str = "text",
    output: str = "generated",
    template: str = "{text}",
    system: str | None = None,
    base_url: str = "",
    model: str = "",
    api_key_env: str = "",
    api_key: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout_s: float = 60.0,
    concurrency: int = 4,
) -> TableOut:
    """Generate one text per row of a table, from the row's text, through an OpenAI-compatible endpoint.

    Everything about the endpoint — settings, key, access policy, errors — is as for ``nlp/generate@1``; the
    calls run ``concurrency`` at a time, with a progress event per finished row. The first row whose call
    fails fails the node, naming the row.

    Args:
        table: the rows; one of its columns holds the text.
        column: the text column (default ``text``); a missing or non-text column fails the node.
        output: the name of the new column (default ``generated``); a name the table already has fails the
            node.
        template: the prompt of each row, where ``{text}`` stands for the row's text (default ``{text}``: the
            text alone), e.g. ``"Summarize in five words: {text}"``.
        system: a system message sent with every prompt (default null: none).
        base_url: as for ``nlp/generate@1`` (default empty: the setting ``llm_base_url``).
        model: as for ``nlp/generate@1`` (default empty: the setting ``llm_model``).
        api_key_env: as for ``nlp/generate@1`` (default empty: the setting ``llm_api_key_env``).
        api_key: as for ``nlp/generate@1``: a secret reference, ``{"secret": "openai"}``.
        temperature: sampling temperature (default null: the server's default).
        max_tokens: the most tokens to generate per row (default null: the server's default); must be >= 1.
        timeout_s: seconds to wait for connecting and for each read of every call (default 60.0); must be > 0.
        concurrency: calls in flight at once (default 4); must be between 1 and 64.

    Returns:
        table: the input table with the column ``output`` (``string``) appended; a null text gives a null
            value without a call.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "summarize-reviews",
          "inputs": {"reviews": {"type": "Table"}},
          "nodes": {"summaries": {"type": "nlp/generate_rows@1", "in": {"table": "$inputs.reviews"},
                                  "params": {"template": "Summarize in five words: {text}", "max_tokens": 16}}},
          "outputs": {"table": "summaries.table"}
        }
        ```
    """
    node_id = "nlp/generate_rows@1"
    if not 1 <= concurrency <= 64:
        raise NlpParamError(f"{node_id}: param 'concurrency' is {concurrency}; use a number from 1 to 64")
    check_names(node_id, [output], "output")
    require_free(node_id, table, [output], param="output")
    texts = text_values(node_id, table, column)
    endpoint = _endpoint(node_id, base_url, model, api_key_env, timeout_s, max_tokens, api_key)
    ctx = context.current()
    ctx.logger.info("POST %s (model %s), %d rows", llm.shown(endpoint.url), endpoint.model, len(texts))
    options = {"temperature": temperature, "max_tokens": max_tokens}
    results: list[str | None] = [None] * len(texts)
    todo = [i for i, text in enumerate(texts) if text is not None]
    transport = guarded_transport(ctx.policy, f"{node_id}: param 'base_url'")
    with llm.open_client(transport, timeout_s) as client, ThreadPoolExecutor(concurrency) as pool:

        def one(row: int) -> str:
            prompt = template.replace("{text}", texts[row] or "")
            body = llm.request_body(endpoint, prompt, system, options)
            try:
                answer = llm.call(endpoint, body, client=client, timeout_s=timeout_s)
                text: str = llm.first_message(endpoint, answer)[0]
            except LlmEndpointError as exc:
                reason = str(exc).removeprefix(f"{node_id}: ")
                raise LlmEndpointError(f"{node_id}: row {row} of input port 'table': {reason}") from None
            return text

        futures = {pool.submit(one, row): row for row in todo}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = endpoint.redact(future.result())
                ctx.progress(done / len(todo), f"{done} of {len(todo)} rows")
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # one failed row fails the node: call no more
            raise
    column_out = pa.array(results, type=pa.string())
    return {"table": append_columns(node_id, table, {output: column_out}, param="output")}
