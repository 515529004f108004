"""JSON form of types: `to_json(t)` and `from_json(data)`, an exact round trip.

Every term is an object with a `kind`; nominal types carry their parent, so a document needs no registry
to be read back::

    {"kind": "list", "item": {"kind": "primitive", "name": "Int"}}
    {"kind": "record", "fields": [{"name": "age", "type": {...}, "required": false}]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typesys.types import (
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
    union,
)

__all__ = ["from_json", "to_json"]


def to_json(t: Type) -> dict[str, Any]:
    """The JSON-ready form of `t` (plain dicts, lists, strings, numbers, booleans and None)."""
    if isinstance(t, Primitive):
        return {"kind": "primitive", "name": t.name}
    if isinstance(t, ListType):
        return {"kind": "list", "item": to_json(t.item)}
    if isinstance(t, DictType):
        return {"kind": "dict", "key": to_json(t.key), "value": to_json(t.value)}
    if isinstance(t, TupleType):
        return {"kind": "tuple", "items": [to_json(i) for i in t.items]}
    if isinstance(t, UnionType):
        return {"kind": "union", "members": [to_json(m) for m in t.members]}
    if isinstance(t, RecordType):
        return {"kind": "record", "fields": [_field_json(f) for f in t.fields]}
    if isinstance(t, TableType):
        columns = None if t.columns is None else [_field_json(c) for c in t.columns]
        return {"kind": "table", "columns": columns}
    if isinstance(t, NDArrayType):
        return {"kind": "ndarray", "dtype": t.dtype, "rank": t.rank}
    if isinstance(t, ModelType):
        return {"kind": "model", "flavor": t.flavor}
    if isinstance(t, NominalType):
        return {"kind": "nominal", "name": t.name, "parent": to_json(t.parent)}
    if isinstance(t, TypeVar):
        return {"kind": "typevar", "name": t.name}
    raise TypeError(f"to_json() got {t!r}, which is not a typesys type")


def _field_json(f: Field) -> dict[str, Any]:
    return {"name": f.name, "type": to_json(f.type), "required": f.required}


def from_json(data: Any) -> Type:
    """Read back what `to_json` wrote; raises ValueError naming the bad part of a malformed document."""
    return _read(data, "$")


def _get(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ValueError(f"type JSON at {where} ({data.get('kind')}) lacks the key {key!r}")
    return data[key]


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = _get(data, key, where)
    if not isinstance(value, list):
        raise ValueError(f"type JSON at {where}.{key} must be a list, got {type(value).__name__}")
    return value


def _read(data: Any, where: str) -> Type:
    if not isinstance(data, dict):
        raise ValueError(f"type JSON at {where} must be an object with a 'kind', got {type(data).__name__}")
    kind = data.get("kind")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise ValueError(
            f"type JSON at {where} has unknown kind {kind!r}; expected one of {', '.join(_READERS)}"
        )
    try:
        return reader(data, where)
    except TypeError as exc:
        raise ValueError(f"type JSON at {where}: {exc}") from exc


def _read_primitive(data: dict[str, Any], where: str) -> Type:
    return Primitive(_get(data, "name", where))


def _read_list(data: dict[str, Any], where: str) -> Type:
    return ListType(_read(_get(data, "item", where), f"{where}.item"))


def _read_dict(data: dict[str, Any], where: str) -> Type:
    key = _read(_get(data, "key", where), f"{where}.key")
    return DictType(key, _read(_get(data, "value", where), f"{where}.value"))


def _read_tuple(data: dict[str, Any], where: str) -> Type:
    items = _list(data, "items", where)
    return TupleType(tuple(_read(x, f"{where}.items[{i}]") for i, x in enumerate(items)))


def _read_union(data: dict[str, Any], where: str) -> Type:
    members = _list(data, "members", where)
    if not members:
        raise ValueError(f"type JSON at {where}: a union needs members")
    return union(*(_read(x, f"{where}.members[{i}]") for i, x in enumerate(members)))


def _read_record(data: dict[str, Any], where: str) -> Type:
    return RecordType(_fields(_list(data, "fields", where), f"{where}.fields"))


def _read_table(data: dict[str, Any], where: str) -> Type:
    columns = _get(data, "columns", where)
    if columns is None:
        return TableType(None)
    if not isinstance(columns, list):
        raise ValueError(f"type JSON at {where}.columns must be a list or null")
    return TableType(_fields(columns, f"{where}.columns"))


def _read_ndarray(data: dict[str, Any], where: str) -> Type:
    return NDArrayType(data.get("dtype"), data.get("rank"))


def _read_model(data: dict[str, Any], where: str) -> Type:
    return ModelType(data.get("flavor"))


def _read_nominal(data: dict[str, Any], where: str) -> Type:
    return NominalType(_get(data, "name", where), _read(_get(data, "parent", where), f"{where}.parent"))


def _read_typevar(data: dict[str, Any], where: str) -> Type:
    return TypeVar(_get(data, "name", where))


# One reader per "kind"; the order is the one the unknown-kind error lists.
_READERS: dict[str, Callable[[dict[str, Any], str], Type]] = {
    "primitive": _read_primitive,
    "list": _read_list,
    "dict": _read_dict,
    "tuple": _read_tuple,
    "union": _read_union,
    "record": _read_record,
    "table": _read_table,
    "ndarray": _read_ndarray,
    "model": _read_model,
    "nominal": _read_nominal,
    "typevar": _read_typevar,
}


def _fields(items: list[Any], where: str) -> tuple[Field, ...]:
    fields = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"type JSON at {where}[{i}] must be an object with name, type, required")
        fields.append(
            Field(
                _get(item, "name", f"{where}[{i}]"),
                _read(_get(item, "type", f"{where}[{i}]"), f"{where}[{i}].type"),
                bool(item.get("required", True)),
            )
        )
    return tuple(fields)
