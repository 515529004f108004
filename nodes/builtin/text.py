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
        sep: put between ``a`` and ``b`` (default ``""``: nothing), also when either string is empty.

    Returns:
        out: ``a``, then ``sep``, then ``b``.
    """
    return f"{a}{sep}{b}"


@node("format", plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def format_text(values: dict[str, Any], *, template: str) -> str:
    """Fill a ``str.format`` template such as ``"Hello {name}"`` from the ``values`` dict.

    Only named fields are allowed, so the template documents what it needs; a field missing from ``values``
    fails naming it. Format specs, items and public attributes work as in Python (``"{score:.2f}"``,
    ``"{user[name]}"``); private attributes (``_x``) are refused, since templates may come from API users.

    Args:
        values: field name -> value; every field the template names must be a key (extra keys are ignored).
        template: the template with named fields (required); write ``{{`` and ``}}`` for literal braces.
            Positional fields (``{}``, ``{0}``) and names starting with ``_`` fail the node.

    Returns:
        out: the template with every field replaced by its formatted value.

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
        sep: the separator string (default null). Null splits at runs of whitespace and drops leading,
            trailing and empty parts (``""`` gives ``[]``); a string splits at each occurrence and keeps empty
            parts (``"a,,b"`` at ``","`` gives ``["a", "", "b"]``; ``""`` gives ``[""]``). An empty string fails.
        maxsplit: at most this many splits, counted from the left (default -1: no limit; 0 returns the
            text as one part, without its leading whitespace when ``sep`` is null); the last part holds the
            unsplit rest.

    Returns:
        out: the parts, in order, without the separators.
    """
    if sep == "":
        raise ParamValueError("builtin/split_text@1: param 'sep' is empty; use null to split on whitespace")
    return text.split(sep, maxsplit)


@node("join_text", plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def join(parts: list[str], *, sep: str = "") -> str:
    """Join a list of strings with ``sep`` between the elements.

    Args:
        parts: the strings to join; an empty list gives ``""``.
        sep: put between consecutive parts (default ``""``: nothing); not added before the first or after
            the last part.

    Returns:
        out: the joined text.
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
        pattern: a Python regular expression (required); it may match anywhere, so anchor it with ``^`` and
            ``$`` (or ``\\A`` and ``\\Z``) to test the whole text. An invalid pattern fails the node.
        flags: letters among ``i`` (ignore case), ``m`` (multiline), ``s`` (dot matches newline), ``x`` (verbose)
            (default ``""``: none); any other letter fails the node.

    Returns:
        out: true when ``pattern`` matches somewhere in ``text``.
    """
    return _compile("regex_match", pattern, flags).search(text) is not None


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def regex_find_all(text: str, *, pattern: str, flags: str = "") -> list[str]:
    """Every non-overlapping match of ``pattern`` in ``text`` (the whole match, not groups).

    Args:
        text: the text to search.
        pattern: a Python regular expression (required); groups in it do not change the output. An invalid
            pattern fails the node.
        flags: letters among ``i``, ``m``, ``s``, ``x`` (see ``regex_match``; default ``""``: none).

    Returns:
        out: the matched substrings from left to right; an empty list when nothing matches. A pattern that can
            match the empty string also yields empty matches (``a*`` in ``"baa"`` gives ``["", "aa", ""]``).
    """
    return [m.group(0) for m in _compile("regex_find_all", pattern, flags).finditer(text)]


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def regex_replace(text: str, *, pattern: str, replacement: str, count: int = 0, flags: str = "") -> str:
    """Replace matches of ``pattern`` by ``replacement``.

    Args:
        text: the text to change.
        pattern: a Python regular expression (required); an invalid pattern fails the node.
        replacement: the replacement (required); ``\\1`` or ``\\g<name>`` insert groups, ``\\\\`` a backslash.
            A reference to a group the pattern does not have fails the node.
        count: replace at most this many matches, from the left (default 0: all).
        flags: letters among ``i``, ``m``, ``s``, ``x`` (see ``regex_match``; default ``""``: none).

    Returns:
        out: ``text`` with the matches replaced; unchanged when nothing matches.
    """
    compiled = _compile("regex_replace", pattern, flags)
    try:
        return compiled.sub(replacement, text, count=count)
    except re.error as exc:
        raise ParamValueError(f"builtin/regex_replace@1: param 'replacement' is invalid: {exc}") from exc


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def replace(text: str, *, old: str, new: str) -> str:
    """Replace every occurrence of the plain substring ``old`` by ``new``.

    Args:
        text: the text to change.
        old: the substring to find, matched literally and case-sensitively (required); an empty string fails
            the node.
        new: what to put in place of each occurrence (required); ``""`` deletes them.

    Returns:
        out: ``text`` with every non-overlapping occurrence of ``old``, from the left, replaced by ``new``.
    """
    if old == "":
        raise ParamValueError("builtin/replace@1: param 'old' is empty; give the substring to replace")
    return text.replace(old, new)


_CASES = ("upper", "lower", "title", "capitalize", "swapcase")


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def change_case(text: str, *, case: str = "lower") -> str:
    """Change letter case: ``upper``, ``lower``, ``title``, ``capitalize`` or ``swapcase``.

    Args:
        text: the text to change.
        case: ``upper``, ``lower`` (default), ``title`` (first letter of every word upper, the rest lower;
            a letter after an apostrophe starts a word, ``"it's"`` gives ``"It'S"``),
            ``capitalize`` (first character upper, the rest lower) or ``swapcase``; any other value fails
            the node.

    Returns:
        out: the text in the requested case (Unicode-aware: ``"straße"`` in upper case is ``"STRASSE"``).
    """
    if case not in _CASES:
        raise ParamValueError(
            f"builtin/change_case@1: param 'case' is {case!r}; use one of {', '.join(_CASES)}"
        )
    result: str = getattr(text, case)()
    return result


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def strip(text: str, *, chars: str | None = None) -> str:
    """Remove leading and trailing whitespace (or the given ``chars``).

    Args:
        text: the text to trim.
        chars: the set of characters to remove from both ends, in any order and any number (``"x "`` removes
            spaces and x's, not the substring ``"x "``); default null removes whitespace.

    Returns:
        out: the text without those characters at its start and end; inner ones are kept.
    """
    return text.strip(chars)


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def text_length(text: str) -> int:
    """Number of characters (Unicode code points) in the text.

    Args:
        text: the text to measure.

    Returns:
        out: the number of Unicode code points (not bytes: ``"é"`` counts 1); 0 for ``""``.
    """
    return len(text)


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def contains(text: str, *, substring: str) -> bool:
    """True when ``substring`` occurs in ``text``.

    Args:
        text: the text to search.
        substring: the text to look for, matched literally and case-sensitively (required); ``""`` is in every
            text.

    Returns:
        out: true when ``substring`` occurs anywhere in ``text``.
    """
    return substring in text


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def json_parse(text: str) -> Any:
    """Parse a JSON document into values (objects become dicts, arrays lists).

    Args:
        text: one JSON document (any value at the top level, e.g. ``"3"`` or ``"[1, 2]"``); invalid JSON fails
            the node naming the line and column.

    Returns:
        out: the value: objects as dicts, arrays as lists, numbers with a fraction or exponent as Floats and
            the others as Ints, ``null`` as null. The non-standard ``NaN`` and ``Infinity`` are accepted.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValueError(
            f"builtin/json_parse@1: input port 'text' is not valid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="text", tags=("string",), cheap=True)
def json_dump(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """Serialize a value to JSON text; fails naming the type for values JSON cannot hold.

    Args:
        value: the value to write: null, booleans, numbers, strings, lists, tuples (written as arrays) and
            dicts (Int, Float and Bool keys are written as strings). Tables and Bytes fail the node;
        convert them first (``table_to_records``, ``to_string``).
        indent: spaces per nesting level for pretty-printing (default null: everything on one line, with
            ``", "`` and ``": "`` separators).
        sort_keys: write dict keys in sorted order (default false: insertion order).

    Returns:
        out: the JSON text; non-ASCII characters are written as they are, not as ``\\u`` escapes, and
            NaN or infinite floats as ``NaN`` / ``Infinity`` (accepted by ``json_parse``, not by strict parsers).
    """
    try:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputValueError(
            f"builtin/json_dump@1: input port 'value' cannot be written as JSON: {exc}; "
            "convert it first (e.g. table_to_records, to_string)"
        ) from exc
