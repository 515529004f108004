"""Limits on what a request may carry, checked at the door before anything is stored or compiled.

One limit for JSON values: a workflow document, a constant, params or run inputs nest at most `MAX_JSON_DEPTH`
levels (every object or array opens one level). Deeper values are refused because every layer behind the API
walks them recursively (the compiler, hashing, the database's JSON, the response serializer, which gives up
at 255), so a value accepted here would fail later — or, once stored, on every read.

Text reaching the store must be storable everywhere: no NUL character (PostgreSQL text and JSON cannot hold
one) and no lone UTF-16 surrogate (`"\\ud800"` in JSON; it is not Unicode and cannot be encoded). Numbers must
be finite (JSON has no NaN or Infinity, though Python's parser accepts them).

`check_json` enforces all of this on a request body's field; `InputLimitsMiddleware` refuses NUL characters in
the URL (path and query), which reach the store as ids, filters and audit entries.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MAX_JSON_DEPTH", "InputLimitsMiddleware", "JsonLimitError", "check_json", "check_text"]

#: The deepest nesting of objects and arrays accepted in a JSON value of a request (a scalar is depth 0,
#: `[1]` depth 1). Documented in the HTTP guide; far above real workflows, far below every recursion limit.
MAX_JSON_DEPTH = 64

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_@$-]{1,40}")


class JsonLimitError(ValueError):
    """A request value breaks one of the limits above; `path` locates the offending part (`a.b[3]`)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


def check_text(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL character or a lone surrogate, with its position), or None."""
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL character (\\u0000) at position {found.start()}; remove it"
    return (
        f"contains a lone UTF-16 surrogate (\\u{ord(found.group()):04x}) at position {found.start()}, which is "
        "not a Unicode character; send valid UTF-8 text (escape binary data, e.g. as base64)"
    )


def check_json(value: Any, where: str = "") -> None:
    """Raise `JsonLimitError` naming the place (`where` then the path inside `value`) where `value` nests
    deeper than `MAX_JSON_DEPTH`, holds unstorable text (in a key or a string) or a non-finite number.

    Iterative, so the check itself cannot exhaust the stack however deep the value is.
    """
    for path, item, depth in _walk(value):
        if isinstance(item, str):
            problem = check_text(item)
            if problem is not None:
                raise JsonLimitError(_where(where, path), problem)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonLimitError(
                _where(where, path), f"{item} is not a JSON number; send a finite number (or null)"
            )
        elif isinstance(item, dict | list | tuple) and depth > MAX_JSON_DEPTH:
            raise JsonLimitError(
                _where(where, path),
                f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays; flatten the value "
                f"(the limit is {MAX_JSON_DEPTH})",
            )


def _walk(value: Any) -> Iterator[tuple[tuple[Any, ...] | None, Any, int]]:
    """Every key and value inside `value` with its path (a linked list of (parent, step), built into text
    only for the one that is reported) and its depth, depth first."""
    stack: list[tuple[tuple[Any, ...] | None, Any, int]] = [(None, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            yield path, item, depth
            if depth > MAX_JSON_DEPTH:
                return
            for key, child in item.items():
                key_path = (path, str(key))
                if isinstance(key, str):
                    yield key_path, key, depth
                stack.append((key_path, child, depth))
        elif isinstance(item, list | tuple):
            depth += 1
            yield path, item, depth
            if depth > MAX_JSON_DEPTH:
                return
            stack.extend(((path, index), child, depth) for index, child in enumerate(item))
        else:
            yield path, item, depth


def _where(where: str, path: tuple[Any, ...] | None) -> str:
    steps: list[Any] = []
    while path is not None:
        path, step = path
        steps.append(step)
    text = where
    for step in reversed(steps):
        if isinstance(step, int):
            text += f"[{step}]"
        elif not _PLAIN_KEY.fullmatch(step):
            # Quoted and escaped: the key may be the NUL or surrogate being reported, or hold dots.
            text += f"[{json.dumps(step[:40] + ('...' if len(step) > 40 else ''))}]"
        else:
            text += f".{step}" if text else step
    if len(text) > 200:
        # A path 64 levels deep is long; the start and the end locate it well enough.
        text = text[:120] + "..." + text[-60:]
    return text


class InputLimitsMiddleware:
    """Refuses a request whose path or query holds a NUL character (`%00`) with a 400 problem (a WebSocket:
    accepted, then closed with 4400) before routing, authentication or the audit see it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _refuse_http(scope, send, problem)
        else:
            await _refuse_websocket(receive, send, problem)


def _url_problem(scope: Scope) -> str | None:
    path = str(scope.get("path", ""))
    if "\x00" in path:
        return (
            f"the path {path.replace(chr(0), '%00')!r} contains a NUL character (%00); no id or name has one"
        )
    query = bytes(scope.get("query_string", b""))
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "%00")
                return f"query parameter {shown!r} contains a NUL character (%00); remove it"
    return None


async def _refuse_http(scope: Scope, send: Send, detail: str) -> None:
    from serve.problems import PROBLEM_MEDIA_TYPE, problem_body

    # Outside the API middleware (so neither the audit nor the metrics store the NUL): an id of its own.
    request_id = uuid.uuid4().hex
    instance = str(scope.get("path", "")).replace("\x00", "%00")
    body = json.dumps(problem_body(400, detail, instance=instance, request_id=request_id)).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(receive: Receive, send: Send, detail: str) -> None:
    from serve.problems import ws_close_reason, ws_refusal_code

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": ws_refusal_code(400), "reason": ws_close_reason(detail)})
