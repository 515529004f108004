"""JSON Schema (draft 2020-12) of port types, so HTTP clients and static tools can check values.

JSON forms of the non-JSON types: `Bytes` is a base64 string; a `Table` is an array of row objects; an
`NDArray` is nested arrays (as deep as its rank); a `Model` is a reference string (a URI or registry name).
Nominal types use their parent's schema with their name as title; type variables accept anything.
The top-level schema carries the canonical type text in `x-rayweave-type`.
"""

from __future__ import annotations

from typing import Any

from typesys.types import (
    ANY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NULL,
    NUMBER,
    STRING,
    DictType,
    Field,
    ListType,
    ModelType,
    NDArrayType,
    NominalType,
    Primitive,
    RecordType,
    TableType,
    TupleType,
    Type,
    TypeVar,
    UnionType,
)

__all__ = ["json_schema"]


def json_schema(t: Type) -> dict[str, Any]:
    """The JSON Schema of the JSON form of values of `t`."""
    schema = _schema(t)
    return {**schema, "x-rayweave-type": str(t)}


def _primitive(t: Primitive) -> dict[str, Any]:
    if t == ANY:
        return {}
    if t == NULL:
        return {"type": "null"}
    if t == BOOL:
        return {"type": "boolean"}
    if t == INT:
        return {"type": "integer"}
    if t in (FLOAT, NUMBER):
        return {"type": "number"}
    if t == STRING:
        return {"type": "string"}
    if t == BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    raise ValueError(f"no JSON Schema for primitive {t}")


def _object(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: _schema(f.type) for f in fields},
        "required": [f.name for f in fields if f.required],
    }


def _ndarray(t: NDArrayType) -> dict[str, Any]:
    kind = (t.dtype or "")[:3]
    leaf: dict[str, Any] = {
        "int": {"type": "integer"},
        "uin": {"type": "integer"},
        "boo": {"type": "boolean"},
    }.get(kind, {"type": "number"} if kind in ("flo", "com") else {})
    if t.rank is None:
        return {"type": "array", "description": f"{t}: nested arrays"}
    schema = leaf
    for _ in range(t.rank):
        schema = {"type": "array", "items": schema}
    return schema


def _schema(t: Type) -> dict[str, Any]:
    if isinstance(t, Primitive):
        return _primitive(t)
    if isinstance(t, ListType):
        return {"type": "array", "items": _schema(t.item)}
    if isinstance(t, TupleType):
        n = len(t.items)
        return {"type": "array", "prefixItems": [_schema(i) for i in t.items], "items": False, "minItems": n}
    if isinstance(t, DictType):
        schema: dict[str, Any] = {"type": "object", "additionalProperties": _schema(t.value)}
        if t.key == INT:
            schema["propertyNames"] = {"pattern": "^-?[0-9]+$"}
        return schema
    if isinstance(t, UnionType):
        return {"anyOf": [_schema(m) for m in t.members]}
    if isinstance(t, RecordType):
        return _object(t.fields)
    if isinstance(t, TableType):
        rows = _object(t.columns) if t.columns is not None else {"type": "object"}
        return {"type": "array", "items": rows, "description": "a table as an array of row objects"}
    if isinstance(t, NDArrayType):
        return _ndarray(t)
    if isinstance(t, ModelType):
        return {"type": "string", "description": f"a reference to a {t.flavor or 'machine-learning'} model"}
    if isinstance(t, NominalType):
        return {**_schema(t.parent), "title": t.name}
    if isinstance(t, TypeVar):
        return {}
    raise TypeError(f"json_schema() got {t!r}, which is not a typesys type")
