"""Hypothesis strategies for typesys terms and for values of a type (shared by the property tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from typesys import (
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
    TypeRegistry,
    TypeVar,
    UnionType,
    union,
)

PRIMITIVES = (ANY, NULL, BOOL, INT, FLOAT, NUMBER, STRING, BYTES)
FIELD_NAMES = ("a", "b", "name", "type", "my field")


def registry_with_nominals() -> TypeRegistry:
    """A default registry with `Image <: Bytes` and `Photo <: Image`."""
    registry = TypeRegistry.default()
    image = registry.register_type("Image", BYTES)
    registry.register_type("Photo", image)
    return registry


IMAGE = NominalType("Image", BYTES)
PHOTO = NominalType("Photo", IMAGE)


def _fields(inner: st.SearchStrategy[Type], optional_fields: bool) -> st.SearchStrategy[tuple[Field, ...]]:
    required = st.booleans() if optional_fields else st.just(True)
    return st.lists(
        st.tuples(st.sampled_from(FIELD_NAMES), inner, required), max_size=3, unique_by=lambda f: f[0]
    ).map(lambda fs: tuple(Field(n, t, r) for n, t, r in fs))


def types(
    *, typevars: bool = True, exotic: bool = True, optional_fields: bool = True, max_leaves: int = 8
) -> st.SearchStrategy[Type]:
    """Arbitrary type terms. `exotic` adds tables, arrays, models and nominal types; `typevars` variables."""
    leaves: st.SearchStrategy[Type] = st.sampled_from(PRIMITIVES)
    if exotic:
        leaves = st.one_of(
            leaves,
            st.just(TableType(None)),
            st.builds(
                NDArrayType, st.sampled_from([None, "float64", "int32"]), st.sampled_from([None, 0, 2])
            ),
            st.builds(ModelType, st.sampled_from([None, "sklearn", "torch"])),
            st.sampled_from([IMAGE, PHOTO]),
        )
    if typevars:
        leaves = st.one_of(leaves, st.sampled_from([TypeVar("T"), TypeVar("U"), TypeVar("Item")]))

    def extend(inner: st.SearchStrategy[Type]) -> st.SearchStrategy[Type]:
        options = [
            st.builds(ListType, inner),
            st.builds(DictType, inner, inner),
            st.lists(inner, max_size=3).map(lambda xs: TupleType(tuple(xs))),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: union(*xs)),
            _fields(inner, optional_fields).map(RecordType),
        ]
        if exotic:
            options.append(_fields(inner, optional_fields).map(TableType))
        return st.one_of(*options)

    # deferred keeps the strategy's repr short (hypothesis warns about reprs of big recursive strategies).
    return st.deferred(lambda: st.recursive(leaves, extend, max_leaves=max_leaves))


def value_types() -> st.SearchStrategy[Type]:
    """Types whose values `values_of` can generate (no tables, arrays, models, nominals or variables)."""
    leaves = st.sampled_from(PRIMITIVES)

    def extend(inner: st.SearchStrategy[Type]) -> st.SearchStrategy[Type]:
        return st.one_of(
            st.builds(ListType, inner),
            st.builds(DictType, st.sampled_from((STRING, INT)), inner),
            st.lists(inner, max_size=3).map(lambda xs: TupleType(tuple(xs))),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: union(*xs)),
            _fields(inner, True).map(RecordType),
        )

    return st.deferred(lambda: st.recursive(leaves, extend, max_leaves=6))


# Floats and ints that survive Int -> Float exactly enough (Python ints are unbounded, floats are not).
_INTS = st.integers(min_value=-(2**53), max_value=2**53)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def values_of(t: Type) -> st.SearchStrategy[Any]:
    """Values of type `t` (for types drawn from `value_types`)."""
    if isinstance(t, Primitive):
        return {
            ANY: st.one_of(st.none(), _INTS, st.text(max_size=5), st.lists(_INTS, max_size=3)),
            NULL: st.none(),
            BOOL: st.booleans(),
            INT: _INTS,
            FLOAT: _FLOATS,
            NUMBER: st.one_of(_INTS, _FLOATS),
            STRING: st.text(max_size=8),
            BYTES: st.binary(max_size=8),
        }[t]
    if isinstance(t, ListType):
        return st.lists(values_of(t.item), max_size=4)
    if isinstance(t, DictType):
        return st.dictionaries(values_of(t.key), values_of(t.value), max_size=3)
    if isinstance(t, TupleType):
        return st.tuples(*(values_of(i) for i in t.items))
    if isinstance(t, UnionType):
        return st.one_of(*(values_of(m) for m in t.members))
    if isinstance(t, RecordType):
        return st.fixed_dictionaries(
            {f.name: values_of(f.type) for f in t.fields if f.required},
            optional={f.name: values_of(f.type) for f in t.fields if not f.required},
        )
    raise NotImplementedError(f"no value strategy for {t}")
