"""Limits on the JSON values the store keeps and the API sends back, and the two ways of meeting them.

One limit for nesting: a value nests at most `MAX_JSON_DEPTH` levels of objects and arrays (every object or
array opens one level). Deeper values fail in every layer that walks them recursively (the compiler, hashing,
the database's JSON, the response serializer, which gives up at 255), so a value stored deeper fails later, on
every read.

Text must be storable everywhere: no NUL character (PostgreSQL text and JSON cannot hold one) and no lone UTF-16
surrogate (`"\\ud800"` in JSON; it is not Unicode and cannot be encoded as UTF-8). Numbers must be finite (JSON
has no NaN or Infinity, though Python's parser accepts them), and integers short enough to be written as text
(Python refuses to write more than 4,300 digits).

Values that are data (a request's fields, a run's workflow outputs) are refused when they break a limit:
`check_json` (a request, at the door) and `storable` (a value's JSON form, e.g. an output, before it is stored)
raise `JsonLimitError` naming the place. Values that only report (event payloads, error messages, log lines) are
made to fit instead: `sanitized` and `clean_text` replace what cannot be stored, so reporting never fails.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from typing import Any

from engine.errors import JsonLimitError

__all__ = [
    "MAX_JSON_DEPTH",
    "REPLACEMENT",
    "JsonLimitError",
    "check_json",
    "check_text",
    "clean_text",
    "sanitized",
    "storable",
]

#: The deepest nesting of objects and arrays accepted in a JSON value (a scalar is depth 0, `[1]` depth 1).
#: Documented in the HTTP guide; far above real workflows, far below every recursion limit.
MAX_JSON_DEPTH = 64
#: What `clean_text` puts in place of a NUL character or a lone surrogate (U+FFFD REPLACEMENT CHARACTER).
REPLACEMENT = "\ufffd"
#: What `sanitized` puts in place of a part nested deeper than `MAX_JSON_DEPTH`.
TOO_DEEP = f"<nested deeper than {MAX_JSON_DEPTH} levels: left out>"

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_@$-]{1,40}")
#: Integers up to this many bits are always short enough to be written as text; longer ones are checked.
_SHORT_INT_BITS = 14_000


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


def clean_text(text: str) -> str:
    """`text` with every NUL character and lone surrogate replaced by U+FFFD (`text` itself when it has none)."""
    if _BAD_CHARACTER.search(text) is None:
        return text
    return _BAD_CHARACTER.sub(REPLACEMENT, text)


def check_json(value: Any, where: str = "") -> None:
    """Raise `JsonLimitError` naming the place (`where` then the path inside `value`) where `value` nests
    deeper than `MAX_JSON_DEPTH`, holds unstorable text (in a key or a string) or a non-finite number.

    Iterative, so the check itself cannot exhaust the stack however deep the value is.
    """
    for path, item, depth in _walk(value):
        if isinstance(item, str):
            problem = check_text(item)
            if problem is not None:
                raise JsonLimitError(_where(where, _steps(path)), problem)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonLimitError(_where(where, _steps(path)), _non_finite(item))
        elif isinstance(item, dict | list | tuple) and depth > MAX_JSON_DEPTH:
            raise JsonLimitError(_where(where, _steps(path)), _too_deep())


def storable(value: Any, where: str = "") -> Any:
    """The JSON form of `value` (tuples as arrays, keys as text, tables and arrays through `to_pylist` or
    `tolist`, other objects as their `repr`), or `JsonLimitError` naming the place (`where` then the path) where
    it breaks a limit of this module. Never deeper in Python's stack than `MAX_JSON_DEPTH` calls."""
    try:
        return _convert(value, 0, strict=True)
    except _Refused as exc:
        raise JsonLimitError(_where(where, list(reversed(exc.steps))), exc.problem) from None


def sanitized(value: Any) -> Any:
    """A JSON form of `value` that always fits, for what only reports (events, errors, log lines): like
    `storable`'s, but NUL characters and lone surrogates become U+FFFD, non-finite numbers null, parts nested
    deeper than `MAX_JSON_DEPTH` a short note, and too long integers and every other object (tables and arrays
    too, which may be big) their cleaned `repr`."""
    return _convert(value, 0, strict=False)


class _Refused(Exception):
    """A limit broken while converting; `steps` grows from the offending part outwards."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.steps: list[Any] = []


def _convert(value: Any, depth: int, *, strict: bool) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _convert_int(value, strict)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if strict:
            raise _Refused(_non_finite(value))
        return None
    if isinstance(value, str):
        return _convert_str(value, strict)
    if isinstance(value, dict | list | tuple):
        return _convert_container(value, depth, strict)
    if strict:  # data: tables and arrays are their rows or items (a report shows their repr: it may be huge)
        for name in ("to_pylist", "tolist"):
            method = getattr(value, name, None)
            if callable(method):
                return _convert(method(), depth, strict=strict)
    # A display form only; a custom __repr__ may return anything, so it is cleaned rather than refused.
    return clean_text(repr(value))


def _convert_int(value: int, strict: bool) -> int | str:
    if value.bit_length() > _SHORT_INT_BITS and _too_long(value):
        if strict:
            raise _Refused(
                f"is an integer of more than {sys.get_int_max_str_digits():,} digits, which cannot be "
                "written as JSON text; send it as a string"
            )
        return f"<integer of {value.bit_length():,} bits>"
    return value


def _convert_str(value: str, strict: bool) -> str:
    if strict:
        problem = check_text(value)
        if problem is not None:
            raise _Refused(problem)
        return value
    return clean_text(value)


def _convert_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int, strict: bool) -> Any:
    if depth >= MAX_JSON_DEPTH:
        if strict:
            raise _Refused(_too_deep())
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            _convert_key(key, strict=strict): _converted_item(key, item, depth, strict)
            for key, item in value.items()
        }
    return [_converted_item(index, item, depth, strict) for index, item in enumerate(value)]


def _convert_key(key: Any, *, strict: bool) -> str:
    text = key if isinstance(key, str) else str(key)
    if strict:
        problem = check_text(text)
        if problem is not None:
            refused = _Refused(problem)
            refused.steps.append(text)
            raise refused
        return text
    return clean_text(text)


def _converted_item(step: Any, item: Any, depth: int, strict: bool) -> Any:
    try:
        return _convert(item, depth + 1, strict=strict)
    except _Refused as exc:
        exc.steps.append(step if isinstance(step, int) else str(step))
        raise


def _too_long(value: int) -> bool:
    try:
        str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return True
    return False


def _non_finite(value: float) -> str:
    return f"{value} is not a JSON number; send a finite number (or null)"


def _too_deep() -> str:
    return (
        f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays; flatten the value "
        f"(the limit is {MAX_JSON_DEPTH})"
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


def _steps(path: tuple[Any, ...] | None) -> list[Any]:
    steps: list[Any] = []
    while path is not None:
        path, step = path
        steps.append(step)
    steps.reverse()
    return steps


def _where(where: str, steps: list[Any]) -> str:
    """`where` followed by the steps into the value (`a.b[3]`), shortened when long."""
    text = where
    for step in steps:
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
