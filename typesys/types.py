"""The type terms of the port type language.

Every term is a frozen, hashable dataclass deriving from `Type`; `str(t)` is the canonical text that
`typesys.parse` reads back exactly. Terms are immutable values: build new ones instead of changing them.

Terms cache their hash and their text (both are asked for constantly by the subtyping cache and the union
ordering); the caches live in slots of the base class and are never pickled, because string hashes differ
between processes (Ray workers receive types through pickle).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "FLOAT",
    "INT",
    "NULL",
    "NUMBER",
    "PRIMITIVE_NAMES",
    "STRING",
    "DictType",
    "Field",
    "ListType",
    "ModelType",
    "NDArrayType",
    "NominalType",
    "Primitive",
    "RecordType",
    "TableType",
    "TupleType",
    "Type",
    "TypeVar",
    "UnionType",
    "optional",
    "union",
]

#: Names of the primitive types, in the order the catalog lists them.
PRIMITIVE_NAMES: tuple[str, ...] = ("Any", "Null", "Bool", "Int", "Float", "Number", "String", "Bytes")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Type variables print bare when they look like the conventional one-capital-letter names (T, K, V, T1);
# any other name prints with a `~` prefix so the parser never confuses it with a registered nominal type.
_SHORT_TYPEVAR = re.compile(r"[A-Z][0-9]*\Z")


class Type:
    """Base class of every type term (see the subclasses in this module)."""

    __slots__ = ("_hash", "_str")
    _hash: int
    _str: str

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        try:
            return self._str
        except AttributeError:
            text = self._render()
            object.__setattr__(self, "_str", text)
            return text

    def _render(self) -> str:
        raise NotImplementedError

    def _init_hash(self, *parts: object) -> None:
        object.__setattr__(self, "_hash", hash((type(self).__name__, *parts)))

    def __reduce__(self) -> tuple[Callable[..., Type], tuple[object, ...]]:
        # Rebuild through __init__ so the cached hash is recomputed in the receiving process.
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))  # type: ignore[arg-type]

    def children(self) -> tuple[Type, ...]:
        """The direct sub-terms of this type (element types, field types, members, parent)."""
        return ()


def _field_name_text(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name)


@dataclass(frozen=True, slots=True)
class Primitive(Type):
    """One of the primitive types: Any, Null, Bool, Int, Float, Number, String, Bytes."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    name: str

    def __post_init__(self) -> None:
        if self.name not in PRIMITIVE_NAMES:
            raise ValueError(
                f"Primitive({self.name!r}) is not a primitive type; use one of {', '.join(PRIMITIVE_NAMES)}"
            )
        self._init_hash(self.name)

    def _render(self) -> str:
        return self.name


ANY = Primitive("Any")
NULL = Primitive("Null")
BOOL = Primitive("Bool")
INT = Primitive("Int")
FLOAT = Primitive("Float")
NUMBER = Primitive("Number")
STRING = Primitive("String")
BYTES = Primitive("Bytes")


@dataclass(frozen=True, slots=True)
class ListType(Type):
    """`List[T]`: a homogeneous sequence (Python list or tuple)."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    item: Type

    def __post_init__(self) -> None:
        _require_type(self.item, "ListType.item")
        self._init_hash(self.item)

    def _render(self) -> str:
        return f"List[{self.item}]"

    def children(self) -> tuple[Type, ...]:
        """The element type."""
        return (self.item,)


@dataclass(frozen=True, slots=True)
class DictType(Type):
    """`Dict[K, V]`: a mapping with keys of one type and values of another."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    key: Type
    value: Type

    def __post_init__(self) -> None:
        _require_type(self.key, "DictType.key")
        _require_type(self.value, "DictType.value")
        self._init_hash(self.key, self.value)

    def _render(self) -> str:
        return f"Dict[{self.key}, {self.value}]"

    def children(self) -> tuple[Type, ...]:
        """The key and value types."""
        return (self.key, self.value)


@dataclass(frozen=True, slots=True)
class TupleType(Type):
    """`Tuple[A, B, ...]`: a fixed-length sequence with one type per position (`Tuple[]` is empty)."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    items: tuple[Type, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))
        for item in self.items:
            _require_type(item, "TupleType.items")
        self._init_hash(self.items)

    def _render(self) -> str:
        return "Tuple[" + ", ".join(str(i) for i in self.items) + "]"

    def children(self) -> tuple[Type, ...]:
        """The positional types."""
        return self.items


@dataclass(frozen=True, slots=True)
class UnionType(Type):
    """`A | B | ...`: a value of any member type. Build it with `union()`, which keeps it canonical."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    members: tuple[Type, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.members, tuple):
            object.__setattr__(self, "members", tuple(self.members))
        if len(self.members) < 2 or any(isinstance(m, UnionType) for m in self.members):
            raise ValueError(
                f"UnionType{self.members!r} is not canonical; build unions with typesys.union(*types)"
            )
        for m in self.members:
            _require_type(m, "UnionType.members")
        self._init_hash(frozenset(self.members))

    def _render(self) -> str:
        return " | ".join(str(m) for m in self.members)

    def children(self) -> tuple[Type, ...]:
        """The member types."""
        return self.members


@dataclass(frozen=True, slots=True)
class Field:
    """A named field of a record or a column of a table; `required=False` prints as `name?: T`."""

    name: str
    type: Type
    required: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Field name {self.name!r} must be a non-empty string")
        _require_type(self.type, f"Field {self.name!r}")

    def __str__(self) -> str:
        mark = "" if self.required else "?"
        return f"{_field_name_text(self.name)}{mark}: {self.type}"


def _check_fields(fields_: tuple[Field, ...], owner: str) -> tuple[Field, ...]:
    fields_ = tuple(fields_)
    seen: set[str] = set()
    for f in fields_:
        if not isinstance(f, Field):
            raise TypeError(f"{owner} fields must be typesys.Field objects, got {f!r}")
        if f.name in seen:
            raise ValueError(f"{owner} has the field {f.name!r} twice; field names must be unique")
        seen.add(f.name)
    return fields_


@dataclass(frozen=True, slots=True)
class RecordType(Type):
    """`{name: String, age?: Int}`: a mapping with named fields (dicts, dataclasses, pydantic models)."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _check_fields(self.fields, "RecordType"))
        self._init_hash(self.fields)

    def _render(self) -> str:
        return "{" + ", ".join(str(f) for f in self.fields) + "}"

    def children(self) -> tuple[Type, ...]:
        """The field types."""
        return tuple(f.type for f in self.fields)

    def field(self, name: str) -> Field | None:
        """The field called `name`, or None."""
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True, slots=True)
class TableType(Type):
    """`Table` or `Table[x: Float, y: String]`: an Arrow table, optionally with a column schema."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    columns: tuple[Field, ...] | None = None

    def __post_init__(self) -> None:
        if self.columns is not None:
            object.__setattr__(self, "columns", _check_fields(self.columns, "TableType"))
        self._init_hash(self.columns)

    def _render(self) -> str:
        if self.columns is None:
            return "Table"
        return "Table[" + ", ".join(str(c) for c in self.columns) + "]"

    def children(self) -> tuple[Type, ...]:
        """The column types."""
        return tuple(c.type for c in self.columns or ())

    def column(self, name: str) -> Field | None:
        """The column called `name`, or None (also None when the table has no schema)."""
        for c in self.columns or ():
            if c.name == name:
                return c
        return None


@dataclass(frozen=True, slots=True)
class NDArrayType(Type):
    """`NDArray`, `NDArray[float64]`, `NDArray[float64, 2]`, `NDArray[*, 2]`: a numpy array / tensor."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    dtype: str | None = None
    rank: int | None = None

    def __post_init__(self) -> None:
        if self.dtype is not None and not _IDENT.match(self.dtype):
            raise ValueError(f"NDArray dtype {self.dtype!r} must be a numpy dtype name such as 'float64'")
        if self.rank is not None and (isinstance(self.rank, bool) or self.rank < 0):
            raise ValueError(f"NDArray rank {self.rank!r} must be a non-negative integer")
        self._init_hash(self.dtype, self.rank)

    def _render(self) -> str:
        if self.dtype is None and self.rank is None:
            return "NDArray"
        if self.rank is None:
            return f"NDArray[{self.dtype}]"
        return f"NDArray[{self.dtype or '*'}, {self.rank}]"


@dataclass(frozen=True, slots=True)
class ModelType(Type):
    """`Model` or `Model[sklearn]`: a reference to an ML model, optionally of one flavor."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    flavor: str | None = None

    def __post_init__(self) -> None:
        if self.flavor is not None and not _IDENT.match(self.flavor):
            raise ValueError(f"Model flavor {self.flavor!r} must be an identifier such as 'sklearn'")
        self._init_hash(self.flavor)

    def _render(self) -> str:
        return "Model" if self.flavor is None else f"Model[{self.flavor}]"


@dataclass(frozen=True, slots=True)
class NominalType(Type):
    """A named type declared by a plugin, a subtype of `parent` (e.g. `Image` with parent `Bytes`)."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    name: str
    parent: Type

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _IDENT.match(self.name):
            raise ValueError(f"Nominal type name {self.name!r} must be an identifier such as 'Image'")
        _require_type(self.parent, f"NominalType {self.name!r} parent")
        self._init_hash(self.name, self.parent)

    def _render(self) -> str:
        return self.name

    def children(self) -> tuple[Type, ...]:
        """The parent type."""
        return (self.parent,)


@dataclass(frozen=True, slots=True)
class TypeVar(Type):
    """A type variable of a generic node signature (`first(xs: List[T]) -> T`), solved by `unify`."""

    __hash__ = Type.__hash__  # keep the cached hash (dataclass would generate its own)

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _IDENT.match(self.name):
            raise ValueError(f"Type variable name {self.name!r} must be an identifier such as 'T'")
        self._init_hash(self.name)

    def _render(self) -> str:
        return self.name if _SHORT_TYPEVAR.match(self.name) else f"~{self.name}"


def _require_type(value: object, where: str) -> None:
    if not isinstance(value, Type):
        raise TypeError(f"{where} must be a typesys Type, got {value!r}; parse strings with typesys.parse")


def _union_key(t: Type) -> tuple[bool, str, str]:
    # Null sorts last so optionals read naturally: `String | Null`; repr breaks ties between distinct
    # terms with the same text (two nominal types of one name with different parents).
    return (t == NULL, str(t), repr(t))


def union(*types: Type | Iterable[Type]) -> Type:
    """The union of `types`: flattened, deduplicated, canonically ordered; a single member is returned as is.

    Accepts types or iterables of types. `union()` of nothing is an error (there is no empty type).
    """
    flat: list[Type] = []
    for t in types:
        items: Iterable[Any] = (t,) if isinstance(t, Type) else t
        for item in items:
            _require_type(item, "union() argument")
            if isinstance(item, UnionType):
                flat.extend(item.members)
            else:
                flat.append(item)
    if not flat:
        raise ValueError("union() needs at least one type")
    unique = sorted(set(flat), key=_union_key)
    if len(unique) == 1:
        return unique[0]
    return UnionType(tuple(unique))


def optional(t: Type) -> Type:
    """`t | Null`."""
    return union(t, NULL)
