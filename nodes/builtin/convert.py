"""Conversion nodes: one per explicit coercion of typesys, inserted by the compiler when asked.

Each has one input ``value`` and one output ``out``, and performs exactly the conversion of the matching
rule in ``typesys.builtin_rules`` (they call the same functions), so a value converted by the compiler's
``Coercion.apply`` and one converted by the node inserted in a workflow are always equal. A value that
cannot be converted fails with ``typesys.CoercionError`` (a ``ValueError``) naming the node and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

from nodes import node
from nodes.builtin.porttypes import Number, Records, RecordsOrDicts
from typesys import CoercionError
from typesys import builtin_rules as rules

R = TypeVar("R")


def _convert(node: str, fn: Callable[[Any], R], value: Any) -> R:
    try:
        return fn(value)
    except CoercionError as exc:
        raise CoercionError(f"builtin/{node}@1: input port 'value': {exc}") from exc


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def to_int(value: Number | str | bool) -> int:
    """Convert a Float (truncating toward zero), a Bool (0/1) or a String holding an integer to Int.

    Inserted by the compiler for the explicit coercions Float -> Int, String -> Int and Bool -> Int.

    Args:
        value: the value to convert. A Float is truncated toward zero (``-2.7`` gives -2); NaN and
            infinities fail. A Bool gives 1 or 0. Text is an integer in Python syntax (sign, digits, optional
            ``_`` between digits) with surrounding spaces allowed (``" -42 "``); a fraction (``"4.5"``) or
            other text fails.

    Returns:
        out: the value as an Int.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "parse-count",
          "inputs": {"count_text": {"type": "String"}},
          "nodes": {"count": {"type": "builtin/to_int@1", "in": {"value": "$inputs.count_text"}}},
          "outputs": {"count": "count.out"}
        }
        ```
    """
    return _convert("to_int", rules.to_int, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def to_float(value: Number | bool) -> float:
    """Convert a number or a Bool (0.0/1.0) to Float.

    Args:
        value: the Int, Float or Bool to convert; a Float passes unchanged.

    Returns:
        out: the value as a Float (``3`` gives 3.0, true gives 1.0). Ints beyond the Float range fail;
            very large ones lose their last digits.
    """
    return _convert("to_float", rules.to_float, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def parse_number(value: str) -> float:
    """Parse a String such as ``" 3.5 "``, ``"1e3"`` or ``"-2"`` into a Float; fails on other text.

    Inserted by the compiler for the explicit coercion String -> Float.

    Args:
        value: the text to parse: a decimal number with optional sign, fraction and exponent, surrounding
            spaces allowed; ``"nan"`` and ``"inf"`` are accepted too. A thousands separator (``"1,000"``) or
            other text fails the node.

    Returns:
        out: the number, always a Float (``"2"`` gives 2.0).
    """
    return _convert("parse_number", rules.parse_number, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def to_string(value: Any) -> str:
    """Convert any value to String: Bytes decode as UTF-8, everything else uses Python's ``str()``.

    Args:
        value: the value to convert, of any type; Bytes that are not valid UTF-8 fail the node.

    Returns:
        out: the text: decoded Bytes, or Python's ``str()`` of the value (``3.0`` gives ``"3.0"``, true gives
            ``"True"``, null gives ``"None"``, a dict its Python repr, not JSON; use ``json_dump`` for JSON).
    """
    return _convert("to_string", rules.to_string, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def to_bool(value: str | Number) -> bool:
    """Convert a String or a number to Bool.

    Text is matched case-insensitively: true/yes/on/y/t/1 are true, false/no/off/n/f/0 and the empty string
    are false, anything else fails. A number is true unless it is zero.

    Args:
        value: the String or number to convert; text is trimmed and matched case-insensitively.

    Returns:
        out: the boolean: for text, true for true/yes/on/y/t/1 and false for false/no/off/n/f/0 or ``""``
            (other text fails the node); for numbers, false only for 0 and 0.0 (NaN is true).
    """
    return _convert("to_bool", rules.to_bool, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def table_to_records(value: pa.Table) -> Records:
    """Convert a Table to a list of records, one dict per row keyed by column name.

    Args:
        value: the Arrow table to convert; any other value fails the node.

    Returns:
        out: one record per row, in row order, with every column as a field (null cells stay null). A table
            without rows gives an empty list.
    """
    return _convert("table_to_records", rules.table_to_records, value)


@node(plugin="builtin", version="1.0.0", category="convert", tags=("conversion",), cheap=True)
def records_to_table(value: RecordsOrDicts) -> pa.Table:
    """Convert a list of records (dicts) to a Table; column types are inferred, missing keys become null.

    The columns are the keys of all records, in order of first appearance.

    Args:
        value: the records (dicts with String keys); a key's values must share one type (nulls aside),
            otherwise the node fails naming the conflict.

    Returns:
        out: a table with one row per record and one column per key, in order of first appearance; a cell
            is null where a record lacks the key.
    """
    # Arrow infers the schema from the first row alone and would silently drop keys that only later rows
    # have; giving every row every key keeps them all.
    keys = list(dict.fromkeys(k for row in value for k in row))
    rows = [{k: row.get(k) for k in keys} for row in value]
    table: pa.Table = _convert("records_to_table", rules.records_to_table, rows)
    return table
