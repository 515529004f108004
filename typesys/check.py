"""Runtime validation of values against port types: `check(value, t)`.

Checks are cheap by design: collections larger than `sample_size` are checked on a sample (always including
the first and last element) unless `full=True`. Errors name the path of the offending element, e.g.
`[3].name: expected Int, got str 'x'`.

Value conventions: `List[T]` accepts lists and tuples; `Tuple[...]` tuples and lists of the right length;
`Dict` and records accept mappings, and records also dataclass instances, pydantic models and named tuples
(extra fields are allowed: records are open). `Int` accepts ints (not bools) and numpy integers; `Float`
floats, numpy floats and also ints (PEP 484's numeric promotion; never bools); `Table` a pyarrow Table or RecordBatch whose
Arrow schema is checked (with null counts for columns whose type excludes Null); `NDArray` anything with
`shape` and `dtype` (numpy, torch, ...). `Model` accepts any object unless the registry has a validator for
it; nominal types check their parent, then their validator. An unsolved type variable accepts anything.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from typesys.arrow import type_of_arrow
from typesys.errors import TypeCheckError
from typesys.subtype import is_assignable
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
    union,
)
from typesys.wording import with_article

if TYPE_CHECKING:
    from typesys.registry import TypeRegistry

__all__ = ["check", "describe_value", "matches"]


def check(
    value: Any,
    t: Type,
    *,
    full: bool = False,
    sample_size: int = 100,
    registry: TypeRegistry | None = None,
) -> None:
    """Raise `TypeCheckError` unless `value` is a value of type `t`.

    `full=True` checks every element of every collection; otherwise collections longer than `sample_size`
    are checked on a sample. `registry` supplies validators of nominal and model types.
    """
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, got {sample_size}")
    if type(t) is Primitive and _PRIMITIVE_TESTS_BY_NAME[t.name](value):
        return  # the common case, checked once per port of every node run: no checker needed
    _Checker(full, sample_size, registry).check(value, t, "")


def matches(value: Any, t: Type, *, registry: TypeRegistry | None = None) -> bool:
    """Whether `check(value, t)` passes (sampled)."""
    try:
        check(value, t, registry=registry)
    except TypeCheckError:
        return False
    return True


def describe_value(value: Any) -> str:
    """A short description of a value for error messages: `str 'x'`, `None`, `list [1, 2, ...]`."""
    if value is None:
        return "None"
    try:
        shown = repr(value)
    except Exception:
        shown = "<unprintable>"
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{type(value).__name__} {shown}"


def _numpy_kind(value: Any) -> str:
    # numpy scalars are recognised without importing numpy: only values that come from numpy have a dtype.
    if type(value).__module__ != "numpy":
        return ""
    dtype = getattr(value, "dtype", None)
    return str(getattr(dtype, "kind", ""))


def _is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, int) and not isinstance(v, bool)) or _numpy_kind(v) in ("i", "u")


def _is_float(v: Any) -> bool:
    # As in PEP 484's numeric tower an int is accepted where a float is expected: it behaves as one in
    # Python, and JSON has a single number type. Statically Int -> Float stays an implicit coercion.
    return isinstance(v, float) or _is_int(v) or _numpy_kind(v) == "f"


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or _numpy_kind(v) == "b"


# Read-only: there is no module-level mutable state.
_PRIMITIVE_TESTS: Mapping[Primitive, Callable[[Any], bool]] = MappingProxyType(
    {
        ANY: lambda v: True,
        NULL: lambda v: v is None,
        BOOL: _is_bool,
        INT: _is_int,
        FLOAT: _is_float,
        NUMBER: _is_float,
        STRING: lambda v: isinstance(v, str),
        BYTES: lambda v: isinstance(v, bytes | bytearray),
    }
)
#: The same tests by primitive name: a string key is cheaper to look up than a type term (hot path of `check`).
_PRIMITIVE_TESTS_BY_NAME: Mapping[str, Callable[[Any], bool]] = MappingProxyType(
    {t.name: test for t, test in _PRIMITIVE_TESTS.items()}
)


# The Python types whose instances certainly pass the primitive's test (read-only).
_EXACT_TYPES: Mapping[Type, frozenset[type]] = MappingProxyType(
    {
        INT: frozenset({int}),
        FLOAT: frozenset({float, int}),
        NUMBER: frozenset({float, int}),
        BOOL: frozenset({bool}),
        STRING: frozenset({str}),
        BYTES: frozenset({bytes}),
        NULL: frozenset({type(None)}),
    }
)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


class _Checker:
    """One check run: its options and the per-type dispatch."""

    def __init__(self, full: bool, sample_size: int, registry: TypeRegistry | None) -> None:
        self.full = full
        self.sample_size = sample_size
        self.registry = registry
        self._rng: random.Random | None = None

    def fail(self, value: Any, t: Type, path: str, detail: str = "") -> TypeCheckError:
        return TypeCheckError(path, str(t), describe_value(value), detail)

    def indices(self, n: int) -> Sequence[int]:
        if self.full or n <= self.sample_size:
            return range(n)
        if self._rng is None:
            self._rng = random.Random()
        picked = set(self._rng.sample(range(1, n - 1), max(self.sample_size - 2, 0)))
        return [0, *sorted(picked), n - 1]

    def check(self, value: Any, t: Type, path: str) -> None:
        if isinstance(t, Primitive):
            if not _PRIMITIVE_TESTS[t](value):
                raise self.fail(value, t, path)
        elif isinstance(t, UnionType):
            self.check_union(value, t, path)
        elif isinstance(t, ListType):
            self.check_list(value, t, path)
        elif isinstance(t, TupleType):
            self.check_tuple(value, t, path)
        elif isinstance(t, DictType):
            self.check_dict(value, t, path)
        elif isinstance(t, RecordType):
            self.check_record(value, t, path)
        elif isinstance(t, TableType):
            self.check_table(value, t, path)
        elif isinstance(t, NDArrayType):
            self.check_array(value, t, path)
        elif isinstance(t, ModelType):
            self.run_validator(value, t, path)
        elif isinstance(t, NominalType):
            self.check_nominal(value, t, path)
        elif not isinstance(t, TypeVar):
            raise TypeError(f"check() got {t!r}, which is not a typesys type")

    def check_list(self, value: Any, t: ListType, path: str) -> None:
        if not isinstance(value, list | tuple):
            raise self.fail(value, t, path)
        self.check_items(value, t.item, path)

    def check_tuple(self, value: Any, t: TupleType, path: str) -> None:
        if not isinstance(value, list | tuple) or len(value) != len(t.items):
            raise self.fail(value, t, path, f"needs exactly {len(t.items)} items")
        for i, item_type in enumerate(t.items):
            self.check(value[i], item_type, _join(path, i))

    def check_nominal(self, value: Any, t: NominalType, path: str) -> None:
        try:
            self.check(value, t.parent, path)
        except TypeCheckError as exc:
            if exc.path != path:
                raise
            raise self.fail(value, t, path, f"{with_article(t.name)} is {with_article(t.parent)}") from None
        self.run_validator(value, t, path)

    def check_union(self, value: Any, t: UnionType, path: str) -> None:
        errors: list[TypeCheckError] = []
        for member in t.members:
            try:
                self.check(value, member, path)
                return
            except TypeCheckError as exc:
                errors.append(exc)
        # When exactly one member got past the top level, its deeper error is the useful one.
        deeper = [e for e in errors if e.path != path]
        if len(deeper) == 1:
            raise deeper[0]
        raise self.fail(value, t, path)

    def check_items(self, items: Sequence[Any], item_type: Type, path: str) -> None:
        n = len(items)
        test = _PRIMITIVE_TESTS.get(item_type) if isinstance(item_type, Primitive) else None
        if test is not None:
            if item_type == ANY:
                return
            # Fast path: big lists of primitives are the common case; an exact-type scan is cheap, and only
            # when it fails does the precise (slower) test run to find the offending element.
            if self.full or n <= self.sample_size:
                exact = _EXACT_TYPES.get(item_type)
                if exact is not None and all(type(v) in exact for v in items):
                    return
                for i in range(n):
                    if not test(items[i]):
                        raise self.fail(items[i], item_type, _join(path, i))
                return
            for i in self.indices(n):
                if not test(items[i]):
                    raise self.fail(items[i], item_type, _join(path, i))
            return
        for i in self.indices(n):
            self.check(items[i], item_type, _join(path, i))

    def check_dict(self, value: Any, t: DictType, path: str) -> None:
        if not isinstance(value, Mapping):
            raise self.fail(value, t, path)
        if t.key == ANY and t.value == ANY:
            return
        n = len(value)
        entries = list(value.items()) if not self.full and n > self.sample_size else None
        chosen = (entries[i] for i in self.indices(n)) if entries is not None else value.items()
        for key, item in chosen:
            key_path = _join(path, key) if isinstance(key, str) else f"{path}[{key!r}]"
            self.check(key, t.key, key_path)
            self.check(item, t.value, key_path)

    def record_getter(self, value: Any) -> Callable[[str], tuple[bool, Any]] | None:
        if isinstance(value, Mapping):
            return lambda name: (name in value, value.get(name))
        cls = type(value)
        is_object_record = (
            (dataclasses.is_dataclass(value) and not isinstance(value, type))
            or hasattr(cls, "model_fields")
            or (isinstance(value, tuple) and hasattr(cls, "_fields"))
        )
        if is_object_record:
            missing = object()

            def get(name: str) -> tuple[bool, Any]:
                got = getattr(value, name, missing)
                return (got is not missing, got)

            return get
        return None

    def check_record(self, value: Any, t: RecordType, path: str) -> None:
        get = self.record_getter(value)
        if get is None:
            raise self.fail(value, t, path, "a record is a mapping, dataclass or model with named fields")
        for f in t.fields:
            present, item = get(f.name)
            if not present:
                if f.required:
                    raise TypeCheckError(
                        _join(path, f.name), str(f.type), "nothing", "required field is missing"
                    )
                continue
            self.check(item, f.type, _join(path, f.name))

    def check_table(self, value: Any, t: TableType, path: str) -> None:
        pa = sys.modules.get("pyarrow")
        if pa is None or not isinstance(value, pa.Table | pa.RecordBatch):
            raise self.fail(value, t, path, "a Table is a pyarrow.Table")
        if t.columns is None:
            return
        names = set(value.schema.names)
        for col in t.columns:
            col_path = _join(path, col.name)
            if col.name not in names:
                if col.required:
                    raise TypeCheckError(col_path, str(col.type), "nothing", "required column is missing")
                continue
            self.check_column(value, col, col_path)

    def check_column(self, table: Any, col: Field, col_path: str) -> None:
        arrow_field = table.schema.field(col.name)
        have = type_of_arrow(arrow_field.type)
        column = table.column(col.name)
        nulls = column.null_count
        want = col.type
        allows_null = bool(is_assignable(NULL, want, self.registry))
        if nulls and not allows_null:
            raise TypeCheckError(col_path, str(want), f"{nulls} null values", "the column type excludes Null")
        if have == NULL and allows_null:
            return
        non_null = want
        if isinstance(want, UnionType):
            others = [m for m in want.members if m != NULL]
            non_null = union(others) if others else NULL
        if not is_assignable(have, non_null, self.registry):
            raise TypeCheckError(col_path, str(want), f"Arrow column of type {arrow_field.type} ({have})")

    def check_array(self, value: Any, t: NDArrayType, path: str) -> None:
        shape = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", None)
        if shape is None or dtype is None or isinstance(value, type):
            raise self.fail(value, t, path, "an NDArray has a shape and a dtype")
        if t.rank is not None and len(shape) != t.rank:
            raise TypeCheckError(path, str(t), f"array of rank {len(shape)}", f"shape {tuple(shape)}")
        if t.dtype is not None:
            name = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1]
            if name != t.dtype:
                raise TypeCheckError(path, str(t), f"array of dtype {name}")

    def run_validator(self, value: Any, t: Type, path: str) -> None:
        if self.registry is None:
            return
        validator = self.registry.validator(t)
        if validator is None and isinstance(t, ModelType) and t.flavor is not None:
            validator = self.registry.validator(ModelType(None))
        if validator is None:
            return
        try:
            ok = validator(value)
        except Exception as exc:
            raise self.fail(value, t, path, f"rejected by its validator: {exc}") from exc
        if ok is False:
            raise self.fail(value, t, path, "rejected by its validator")
