"""``http_request``: an HTTP call, the built-in example of a node that uses an external resource.

It is declared non-deterministic and uncached (a server's answer can change between calls) and tagged
``external``, so the engine's circuit breaker and retry policies apply to it like to any remote service.

In a run it reaches only public addresses, plus the hosts and networks the installation allows
(``RAYWEAVE_HTTP_ALLOW``): every connection, redirects included, is checked and pinned to the address that
was checked (`nodes.builtin.netguard`). Called directly, outside a run, it may reach any address.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from nodes import context, node
from nodes.builtin.errors import HttpRequestError, ParamValueError
from nodes.builtin.netguard import guarded_transport

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HttpResponse(TypedDict):
    """Outputs of ``http_request``."""

    status: int
    headers: dict[str, str]
    text: str
    json: Any


@node(
    plugin="builtin",
    version="1.0.0",
    category="http",
    tags=("external", "network"),
    deterministic=False,
    cache=False,
    io_bound=True,  # it waits on the network: on Ray it runs on the warm pool of threaded actors
)
def http_request(
    url: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    timeout_s: float = 10.0,
    raise_for_status: bool = True,
    follow_redirects: bool = True,
) -> HttpResponse:
    """Send an HTTP request and output the response's ``status``, ``headers``, ``text`` and ``json``.

    An external resource: non-deterministic, never cached, tagged ``external`` so the engine's circuit
    breaker and retry policy apply. A 4xx/5xx answer fails the node (unless ``raise_for_status`` is off),
    so retries can cover it; connection errors and timeouts always fail it.

    Args:
        url: the URL to call, ``http://`` or ``https://``, with any query string already in it; an invalid
            URL fails the node. Internal addresses (loopback, private, link-local, unique-local, multicast,
            cloud metadata services) are refused, also after a redirect, unless the installation allows
            the host or its network in ``RAYWEAVE_HTTP_ALLOW``. Proxy settings of the environment are not
            used.
        body: the request body, sent as UTF-8 text (optional, default null: no body); set a
            ``Content-Type`` header for JSON.
        headers: request headers, name -> value (optional, default null: only the client's defaults, such
            as ``User-Agent``).
        method: GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS, in any letter case; any other
            value fails the node.
        timeout_s: seconds to wait for connecting and, separately, for each read (default 10.0); must be
            > 0. A timeout fails the node.
        raise_for_status: fail on a 4xx/5xx status instead of returning it (default true).
        follow_redirects: follow 3xx redirects to their target (default true); when false, the 3xx
            response itself is the output.

    Returns:
        status: the HTTP status code of the final response (e.g. 200); 4xx/5xx only when
            ``raise_for_status`` is false.
        headers: the response headers, with lower-case names; a header sent several times has its values
            joined with ``", "``.
        text: the body decoded as text (with the charset the response declares, else UTF-8); ``""`` when
            there is none.
        json: the parsed body when the ``Content-Type`` mentions ``json`` and the body parses, else null.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "fetch-json",
          "inputs": {"url": {"type": "String"}},
          "nodes": {
            "fetch": {"type": "builtin/http_request@1", "in": {"url": "$inputs.url"}, "params": {"timeout_s": 5},
                      "retry": {"max_attempts": 3, "backoff": "exponential", "initial_s": 0.5}}
          },
          "outputs": {"status": "fetch.status", "json": "fetch.json"}
        }
        ```
    """
    import httpx

    verb = method.upper()
    if verb not in _METHODS:
        raise ParamValueError(
            f"builtin/http_request@1: param 'method' is {method!r}; use one of {', '.join(_METHODS)}"
        )
    if timeout_s <= 0:
        raise ParamValueError(f"builtin/http_request@1: param 'timeout_s' is {timeout_s}; use a number > 0")
    transport = guarded_transport(context.current().policy, "builtin/http_request@1: input port 'url'")
    # trust_env off: no proxy or .netrc credentials from the worker's environment reach a workflow's request.
    client = httpx.Client(transport=transport, trust_env=False)
    try:
        response = client.request(
            verb,
            url,
            content=body.encode() if body is not None else None,
            headers=headers,
            timeout=timeout_s,
            follow_redirects=follow_redirects,
        )
    except httpx.TimeoutException as exc:
        raise HttpRequestError(
            f"builtin/http_request@1: {verb} {url} timed out after {timeout_s} s; raise param 'timeout_s' "
            "or add a retry policy"
        ) from exc
    except httpx.InvalidURL as exc:
        raise HttpRequestError(
            f"builtin/http_request@1: input port 'url' {url!r} is not a valid URL"
        ) from exc
    except httpx.HTTPError as exc:
        raise HttpRequestError(f"builtin/http_request@1: {verb} {url} failed: {exc}") from exc
    finally:
        client.close()
    if raise_for_status and response.status_code >= 400:
        raise HttpRequestError(
            f"builtin/http_request@1: {verb} {url} answered {response.status_code} "
            f"{response.reason_phrase}: {response.text[:200]!r}; set raise_for_status=false to handle it"
        )
    parsed: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(response.text)
        except json.JSONDecodeError:
            parsed = None  # a server that mislabels its body still yields its text
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "text": response.text,
        "json": parsed,
    }
