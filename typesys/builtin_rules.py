"""The built-in coercion rules that `TypeRegistry.default()` starts with.

Explicit rules name the built-in conversion node that performs them in a workflow (see the contracts ADR);
the `convert` functions here are the reference semantics those nodes follow.
"""

from __future__ import annotations

import math
from typing import Any

from typesys.errors import CoercionError
from typesys.rules import CoercionRule
from typesys.types import (
    ANY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NUMBER,
    STRING,
    DictType,
    ListType,
    RecordType,
    TableType,
    Type,
)

__all__ = ["builtin_rules"]

# Costs: implicit rules are cheap so any implicit path beats any explicit one.
_IMPLICIT = 1.0
_EXPLICIT = 10.0


def _fail(value: Any, target: str, why: str) -> CoercionError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return CoercionError(f"cannot convert {type(value).__name__} {shown} to {target}: {why}")


def int_to_float(value: Any) -> float:
    """Int -> Float (implicit)."""
    return float(value)


def to_int(value: Any) -> int:
    """Float, Bool or String -> Int (explicit, `builtin/to_int@1`): floats truncate toward zero."""
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _fail(value, "Int", "the text is not an integer") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(value, "Int", "NaN and infinities have no integer value")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _fail(value, "Int", str(exc)) from None


def to_float(value: Any) -> float:
    """Number or Bool -> Float (explicit, `builtin/to_float@1`)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail(value, "Float", str(exc)) from None


def parse_number(value: Any) -> float:
    """String -> Float (explicit, `builtin/parse_number@1`): accepts what Python's float() accepts."""
    try:
        return float(str(value).strip())
    except ValueError:
        raise _fail(value, "Float", "the text is not a number") from None


def to_string(value: Any) -> str:
    """Anything -> String (explicit, `builtin/to_string@1`): bytes decode as UTF-8, the rest use str()."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(value, "String", "the bytes are not UTF-8") from None
    return str(value)


_TRUE = frozenset({"true", "yes", "1", "on", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "off", "n", "f", ""})


def to_bool(value: Any) -> bool:
    """String or Number -> Bool (explicit, `builtin/to_bool@1`): words like true/false, yes/no, 1/0."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _fail(value, "Bool", "expected true/false, yes/no, on/off or 1/0")
    return bool(value)


def table_to_records(value: Any) -> list[dict[str, Any]]:
    """Table -> List[record] (explicit, `builtin/table_to_records@1`)."""
    to_pylist = getattr(value, "to_pylist", None)
    if to_pylist is None:
        raise _fail(value, "List[record]", "not an Arrow table")
    rows: list[dict[str, Any]] = to_pylist()
    return rows


def records_to_table(value: Any) -> Any:
    """List[record] -> Table (explicit, `builtin/records_to_table@1`); needs pyarrow."""
    import pyarrow as pa

    rows = [dict(r) for r in value]
    # Arrow infers the schema from the first row only; a key that first appears later must still become a column
    # (null where a record lacks it), so collect every key in first-seen order.
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    try:
        return pa.Table.from_pylist([{name: row.get(name) for name in columns} for row in rows])
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _fail(value, "Table", str(exc)) from None


def _records_of_table(source: Type) -> Type:
    if isinstance(source, TableType) and source.columns is not None:
        return ListType(RecordType(source.columns))
    return ListType(RecordType(()))


def _table_of_records(source: Type) -> Type:
    if isinstance(source, ListType) and isinstance(source.item, RecordType):
        return TableType(source.item.fields)
    return TableType(None)


def builtin_rules() -> tuple[CoercionRule, ...]:
    """The built-in rules, newly built (rules are immutable, but the caller owns the tuple)."""
    any_record_list = ListType(RecordType(()))
    return (
        CoercionRule(INT, FLOAT, "implicit", _IMPLICIT, int_to_float, None, "lossless widening"),
        CoercionRule(NUMBER, FLOAT, "implicit", _IMPLICIT, int_to_float, None, "an Int becomes a Float"),
        CoercionRule(FLOAT, INT, "explicit", _EXPLICIT, to_int, "builtin/to_int@1", "truncates"),
        # A little dearer than parse_number, so a Number target parses "2.5" instead of failing on it.
        CoercionRule(
            STRING, INT, "explicit", _EXPLICIT + 0.5, to_int, "builtin/to_int@1", "parses; may fail"
        ),
        CoercionRule(BOOL, INT, "explicit", _EXPLICIT, to_int, "builtin/to_int@1", "False -> 0, True -> 1"),
        CoercionRule(BOOL, FLOAT, "explicit", _EXPLICIT, to_float, "builtin/to_float@1", "False -> 0.0"),
        CoercionRule(
            STRING, FLOAT, "explicit", _EXPLICIT, parse_number, "builtin/parse_number@1", "parses; may fail"
        ),
        CoercionRule(STRING, BOOL, "explicit", _EXPLICIT, to_bool, "builtin/to_bool@1", "true/false words"),
        CoercionRule(NUMBER, BOOL, "explicit", _EXPLICIT, to_bool, "builtin/to_bool@1", "zero is False"),
        CoercionRule(
            ANY, STRING, "explicit", _EXPLICIT + 2, to_string, "builtin/to_string@1", "str(); bytes as UTF-8"
        ),
        CoercionRule(
            TableType(None),
            any_record_list,
            "explicit",
            _EXPLICIT,
            table_to_records,
            "builtin/table_to_records@1",
            "one record per row",
            _records_of_table,
        ),
        CoercionRule(
            any_record_list,
            TableType(None),
            "explicit",
            _EXPLICIT,
            records_to_table,
            "builtin/records_to_table@1",
            "one row per record",
            _table_of_records,
        ),
        CoercionRule(
            ListType(DictType(STRING, ANY)),
            TableType(None),
            "explicit",
            _EXPLICIT,
            records_to_table,
            "builtin/records_to_table@1",
            "one row per dict",
        ),
        CoercionRule(BYTES, STRING, "explicit", _EXPLICIT, to_string, "builtin/to_string@1", "UTF-8 decode"),
    )
