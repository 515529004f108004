"""Text: concatenation, templates, splitting, regular expressions, case, JSON."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from nodes import node
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def concat(a: str, b: str, *, sep: str = "") -> str:
    """Concatenate two strings, with ``sep`` between them.

    Args:
        a: the first string.
        b: the second string.
        sep: put between ``a`` and ``b``.
    """
    return f"{a}{sep}{b}"


@node("format", plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def format_text(values: dict[str, Any], *, template: str) -> str:
    """Fill a ``str.format`` template such as ``"Hello {name}"`` from the ``values`` dict.

    Only named fields are allowed, so the template documents what it needs; a field missing from ``values``
    fails naming it. Format specs, items and public attributes work as in Python (``"{score:.2f}"``,
    ``"{user[name]}"``); private attributes (``_x``) are refused, since templates may come from API users.

    Args:
        values: field name -> value.
        template: the template with named fields.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "greeting",
          "inputs": {"user": {"type": "Dict[String, Any]"}},
          "nodes": {"greet": {"type": "builtin/format@1", "in": {"values": "$inputs.user"},
                              "params": {"template": "Hello {name}, you have {count} messages"}}},
          "outputs": {"greeting": "greet.out"}
        }
        ```
    """
    try:
        return _SafeFormatter().vformat(template, (), values)
    except KeyError as exc:
        raise MissingKeyError(
            f"builtin/format@1: template field {exc.args[0]!r} is not in input port 'values' "
            f"(keys: {sorted(values)}); add it to the dict or change the template"
        ) from exc
    except ParamValueError:
        raise
    except (IndexError, AttributeError, ValueError, TypeError) as exc:
        raise InputValueError(f"builtin/format@1: cannot fill template {template!r}: {exc}") from exc


class _SafeFormatter(string.Formatter):
    """``str.format`` restricted to named fields and public attributes.

    A template is workflow configuration, possibly sent over the HTTP API; without this, a field such as
    ``{x.__init__.__globals__}`` would read the server's module globals.
    """

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        first = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        # Positional fields ("{}" / "{0}") have no name a workflow could bind.
        if first == "" or first.isdigit():
            raise ParamValueError(
                f"builtin/format@1: param 'template' uses a positional field {{{field_name}}}; "
                "name every field, e.g. {name}"
            )
        if re.search(r"\._", field_name) or first.startswith("_"):
            raise ParamValueError(
                f"builtin/format@1: param 'template' field {{{field_name}}} accesses a private attribute; "
                "use only public names"
            )
        return super().get_field(field_name, args, kwargs)


@node("split_text", plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def split(text: str, *, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    """Split text at ``sep`` (at runs of whitespace when ``sep`` is null).

    Args:
        text: the text to split.
        sep: the separator; null splits on whitespace and drops empty parts.
        maxsplit: at most this many splits (-1: no limit).
    """
    if sep == "":
        raise ParamValueError("builtin/split@1: param 'sep' is empty; use null to split on whitespace")
    return text.split(sep, maxsplit)


@node("join_text", plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def join(parts: list[str], *, sep: str = "") -> str:
    """Join a list of strings with ``sep`` between the elements.

    Args:
        parts: the strings.
        sep: put between consecutive parts.
    """
    return sep.join(parts)


def _compile(node: str, pattern: str, flags: str) -> re.Pattern[str]:
    value = 0
    for flag in flags:
        try:
            value |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[flag]
        except KeyError:
            raise ParamValueError(
                f"builtin/{node}@1: param 'flags' has unknown flag {flag!r}; use letters from 'imsx'"
            ) from None
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise ParamValueError(
            f"builtin/{node}@1: param 'pattern' {pattern!r} is not a valid regex: {exc}"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def regex_match(text: str, *, pattern: str, flags: str = "") -> bool:
    """True when the regular expression ``pattern`` matches anywhere in ``text``.

    Args:
        text: the text to search.
        pattern: a Python regular expression.
        flags: letters among ``i`` (ignore case), ``m`` (multiline), ``s`` (dot matches newline), ``x`` (verbose).
    """
    return _compile("regex_match", pattern, flags).search(text) is not None


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def regex_find_all(text: str, *, pattern: str, flags: str = "") -> list[str]:
    """Every non-overlapping match of ``pattern`` in ``text`` (the whole match, not groups).

    Args:
        text: the text to search.
        pattern: a Python regular expression.
        flags: letters among ``i``, ``m``, ``s``, ``x`` (see ``regex_match``).
    """
    return [m.group(0) for m in _compile("regex_find_all", pattern, flags).finditer(text)]


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def regex_replace(text: str, *, pattern: str, replacement: str, count: int = 0, flags: str = "") -> str:
    """Replace matches of ``pattern`` by ``replacement``.

    Args:
        text: the text to change.
        pattern: a Python regular expression.
        replacement: the replacement; ``\\1`` or ``\\g<name>`` insert groups.
        count: replace at most this many matches (0: all).
        flags: letters among ``i``, ``m``, ``s``, ``x`` (see ``regex_match``).
    """
    compiled = _compile("regex_replace", pattern, flags)
    try:
        return compiled.sub(replacement, text, count=count)
    except re.error as exc:
        raise ParamValueError(f"builtin/regex_replace@1: param 'replacement' is invalid: {exc}") from exc


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def replace(text: str, *, old: str, new: str) -> str:
    """Replace every occurrence of the plain substring ``old`` by ``new``."""
    if old == "":
        raise ParamValueError("builtin/replace@1: param 'old' is empty; give the substring to replace")
    return text.replace(old, new)


_CASES = ("upper", "lower", "title", "capitalize", "swapcase")


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def change_case(text: str, *, case: str = "lower") -> str:
    """Change letter case: ``upper``, ``lower``, ``title``, ``capitalize`` or ``swapcase``."""
    if case not in _CASES:
        raise ParamValueError(
            f"builtin/change_case@1: param 'case' is {case!r}; use one of {', '.join(_CASES)}"
        )
    result: str = getattr(text, case)()
    return result


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def strip(text: str, *, chars: str | None = None) -> str:
    """Remove leading and trailing whitespace (or the given ``chars``)."""
    return text.strip(chars)


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def text_length(text: str) -> int:
    """Number of characters (Unicode code points) in the text."""
    return len(text)


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def contains(text: str, *, substring: str) -> bool:
    """True when ``substring`` occurs in ``text``."""
    return substring in text


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def json_parse(text: str) -> Any:
    """Parse a JSON document into values (objects become dicts, arrays lists)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValueError(
            f"builtin/json_parse@1: input port 'text' is not valid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def json_dump(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """Serialize a value to JSON text; fails naming the type for values JSON cannot hold."""
    try:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputValueError(
            f"builtin/json_dump@1: input port 'value' cannot be written as JSON: {exc}; "
            "convert it first (e.g. table_to_records, to_string)"
        ) from exc
