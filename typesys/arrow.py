"""Mapping between Arrow data types and port types. pyarrow is imported only when these are called."""

from __future__ import annotations

from typing import Any

from typesys.types import (
    ANY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NULL,
    STRING,
    Field,
    ListType,
    RecordType,
    TableType,
    Type,
)

__all__ = ["table_type_of_schema", "type_of_arrow"]


def type_of_arrow(dtype: Any) -> Type:
    """The port type of an Arrow data type.

    Arrow marks nearly every field nullable, so nullability is ignored here; the runtime check looks at the
    actual null count of a column instead.

    Arrow types without a port equivalent (timestamps, decimals, ...) map to `Any`, which the subtyping
    rules then only let through to `Any` targets.
    """
    import pyarrow as pa
    import pyarrow.types as pat

    if pat.is_null(dtype):
        return NULL
    if pat.is_boolean(dtype):
        return BOOL
    if pat.is_integer(dtype):
        return INT
    if pat.is_floating(dtype):
        return FLOAT
    if pat.is_string(dtype) or pat.is_large_string(dtype) or getattr(pat, "is_string_view", _no)(dtype):
        return STRING
    if pat.is_binary(dtype) or pat.is_large_binary(dtype) or pat.is_fixed_size_binary(dtype):
        return BYTES
    if pat.is_list(dtype) or pat.is_large_list(dtype) or pat.is_fixed_size_list(dtype):
        return ListType(type_of_arrow(dtype.value_type))
    if pat.is_struct(dtype):
        fields: list[pa.Field] = [dtype.field(i) for i in range(dtype.num_fields)]
        return RecordType(tuple(Field(f.name, type_of_arrow(f.type)) for f in fields))
    return ANY


def _no(_: Any) -> bool:
    return False


def table_type_of_schema(schema: Any) -> TableType:
    """`Table[...]` with one required column per Arrow schema field (see `type_of_arrow` on nulls)."""
    return TableType(tuple(Field(f.name, type_of_arrow(f.type)) for f in schema))
