"""`from_annotation(obj)`: port types from Python annotations.

Understood: `None`, `bool`, `int`, `float`, `str`, `bytes` (and their subclasses, e.g. enums), numpy scalar
types, `object`/`typing.Any`, `numbers.Number`/`Real`;
`list[T]`, `Sequence[T]`, `tuple[A, B]`, `tuple[T, ...]` (a list), `dict[K, V]`, `Mapping[K, V]`;
`X | Y`, `Optional[X]`, `Union[...]`; `Literal[...]` (widened to the types of its values); `Annotated[T, ...]`
(a typesys `Type` among the metadata wins, so `Annotated[bytes, image_type]` is a nominal type);
`typing.TypeVar` (bounds are ignored: unification solves it); `NewType` (a registered nominal type of that
name, else its supertype); dataclasses, pydantic models, TypedDicts and NamedTuples as records;
`pyarrow.Table` (and a `pyarrow.Schema` object, giving the column schema); `numpy.ndarray` and
`numpy.typing.NDArray[dtype]`; a string is parsed as type text; a typesys `Type` is returned as is.
pyarrow, numpy and pydantic are never imported here: they are recognised by module name.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import numbers
import types as pytypes
import typing
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from typesys.errors import AnnotationError, TypeParseError
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
    NDArrayType,
    RecordType,
    TableType,
    TupleType,
    Type,
    TypeVar,
    union,
)

if TYPE_CHECKING:
    from typesys.registry import TypeRegistry

__all__ = ["from_annotation"]

_SIMPLE: cabc.Mapping[object, Type] = MappingProxyType(
    {
        type(None): NULL,
        bool: BOOL,
        int: INT,
        float: FLOAT,
        str: STRING,
        bytes: BYTES,
        bytearray: BYTES,
        object: ANY,
        numbers.Number: NUMBER,
        numbers.Real: NUMBER,
    }
)
_SEQUENCES = (list, cabc.Sequence, cabc.Iterable, cabc.Collection, cabc.MutableSequence, set, frozenset)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def from_annotation(obj: Any, registry: TypeRegistry | None = None) -> Type:
    """The port type of the Python annotation `obj`; raises `AnnotationError` naming what has no equivalent."""
    return _Reader(registry).read(obj)


def _name(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or obj)


class _Reader:
    def __init__(self, registry: TypeRegistry | None) -> None:
        self.registry = registry
        self.active: set[int] = set()

    def fail(self, obj: Any, why: str = "") -> AnnotationError:
        hint = (
            "use builtins, typing generics, a dataclass/pydantic model/TypedDict, pyarrow.Table, numpy.ndarray, "
            "or a typesys type (text like 'List[Int]' or a Type object)"
        )
        return AnnotationError(f"the annotation {obj!r} has no port type{': ' + why if why else ''}; {hint}")

    def read(self, obj: Any) -> Type:
        if isinstance(obj, Type):
            return obj
        if obj is None:
            return NULL
        if isinstance(obj, str):
            try:
                from typesys.parse import parse

                return parse(obj, self.registry)
            except TypeParseError as exc:
                raise AnnotationError(f"the string annotation {obj!r} is not a type: {exc}") from exc
        if obj is typing.Any:
            return ANY
        simple = _SIMPLE.get(obj) if _hashable(obj) else None
        if simple is not None:
            return simple
        if isinstance(obj, typing.TypeVar):
            return TypeVar(obj.__name__)
        if isinstance(obj, typing.NewType):
            nominal = self.registry.nominal(obj.__name__) if self.registry is not None else None
            return nominal if nominal is not None else self.read(obj.__supertype__)
        origin = typing.get_origin(obj)
        if origin is not None:
            return self.read_generic(obj, origin, typing.get_args(obj))
        if isinstance(obj, type):
            return self.read_class(obj)
        third = self.third_party(obj)
        if third is not None:
            return third
        raise self.fail(obj)

    def read_generic(self, obj: Any, origin: Any, args: tuple[Any, ...]) -> Type:
        if origin is typing.Annotated:
            for meta in args[1:]:
                if isinstance(meta, Type):
                    return meta
            return self.read(args[0])
        if origin in (typing.Union, pytypes.UnionType):
            return union(*(self.read(a) for a in args))
        if origin is typing.Literal:
            return union(*(self.read(type(a)) for a in args))
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return ListType(self.read(args[0]))
            if args == ((),):
                return TupleType(())
            return TupleType(tuple(self.read(a) for a in args))
        if origin in _SEQUENCES:
            return ListType(self.read(args[0]) if args else ANY)
        if origin in _MAPPINGS:
            if len(args) != 2:
                return DictType(ANY, ANY)
            return DictType(self.read(args[0]), self.read(args[1]))
        if _module(origin) == "numpy" and origin.__name__ == "ndarray":
            return self.numpy_array(args)
        if isinstance(origin, type) and _is_record_class(origin):
            return self.read_class(origin)
        raise self.fail(obj)

    def numpy_array(self, args: tuple[Any, ...]) -> NDArrayType:
        # numpy.typing.NDArray[np.float64] is ndarray[tuple[int, ...], dtype[float64]] (shape, dtype).
        if len(args) == 2:
            dtype_args = typing.get_args(args[1])
            if dtype_args and isinstance(dtype_args[0], type) and _module(dtype_args[0]) == "numpy":
                name = dtype_args[0].__name__
                if name not in ("generic", "number", "floating", "integer", "signedinteger", "inexact"):
                    return NDArrayType(name, None)
        return NDArrayType(None, None)

    def read_class(self, cls: type) -> Type:
        third = self.third_party(cls)
        if third is not None:
            return third
        scalar = _scalar_class(cls)
        if scalar is not None:
            return scalar
        if cls in _SEQUENCES or cls is tuple:
            return ListType(ANY)
        if cls in _MAPPINGS:
            return DictType(ANY, ANY)
        if _is_record_class(cls):
            if id(cls) in self.active:
                raise self.fail(cls, f"{_name(cls)} refers to itself; recursive records have no port type")
            self.active.add(id(cls))
            try:
                return self.record(cls)
            finally:
                self.active.discard(id(cls))
        raise self.fail(cls)

    def record(self, cls: type) -> RecordType:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise self.fail(cls, f"its field annotations cannot be resolved ({exc})") from exc
        required = _required_fields(cls, hints)
        fields = []
        for name, hint in hints.items():
            if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar or name not in required:
                continue
            try:
                field_type = self.read(hint)
            except AnnotationError as exc:
                raise AnnotationError(f"field {name!r} of {_name(cls)}: {exc}") from exc
            fields.append(Field(name, field_type, required[name]))
        return RecordType(tuple(fields))

    def third_party(self, obj: Any) -> Type | None:
        module = _module(obj)
        name = getattr(obj, "__name__", "")
        if module.startswith("pyarrow"):
            if name in ("Table", "RecordBatch"):
                return TableType(None)
            if type(obj).__name__ == "Schema":
                from typesys.arrow import table_type_of_schema

                return table_type_of_schema(obj)
        if module == "numpy" and name == "ndarray":
            return NDArrayType(None, None)
        return None


def _scalar_class(cls: type) -> Type | None:
    """Subclasses of the scalar builtins (IntEnum, StrEnum, numpy.float64) and numpy's scalar types."""
    for base, t in ((bool, BOOL), (int, INT), (float, FLOAT), (str, STRING), (bytes, BYTES)):
        if issubclass(cls, base):
            return t
    if _module(cls) == "numpy":
        name = cls.__name__
        if name.startswith(("int", "uint")):
            return INT
        if name.startswith("float"):
            return FLOAT
        if name.startswith("bool"):
            return BOOL
    return None


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _module(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = type(obj).__module__
    return module or ""


def _is_record_class(cls: type) -> bool:
    return (
        dataclasses.is_dataclass(cls)
        or hasattr(cls, "model_fields")
        or typing.is_typeddict(cls)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _required_fields(cls: type, hints: dict[str, Any]) -> dict[str, bool]:
    """Field name -> required, for the fields that make up the record (in declaration order)."""
    if dataclasses.is_dataclass(cls):
        return {
            f.name: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            for f in dataclasses.fields(cls)
        }
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):
        return {name: bool(info.is_required()) for name, info in model_fields.items()}
    if typing.is_typeddict(cls):
        required_keys = getattr(cls, "__required_keys__", frozenset(hints))
        return {name: name in required_keys for name in hints}
    defaults = getattr(cls, "_field_defaults", {})
    return {name: name not in defaults for name in getattr(cls, "_fields", ())}
