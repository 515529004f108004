"""Subtyping: `is_assignable(source, target)` decides whether a value of `source` may flow into `target`.

The relation is structural except for nominal types, which are subtypes of their declared parent. Rules:

- `Any` is the top: everything is assignable to it. As a *source* it is assignable only to `Any`; untyped
  producers feed typed consumers through the implicit, runtime-checked coercion of `typesys.coerce`.
- `Int <: Number`, `Float <: Number`; `Bool` is not an `Int` (and `Int` is not a `Float`: that is an implicit
  coercion, not subtyping, because the value changes).
- Unions: a union source needs every member assignable; a target union needs one member to accept the source.
  Hence `Null <: T | Null` and `A <: A | B`.
- Containers are covariant (values crossing ports are immutable copies): `List`, `Dict` keys and values,
  `Tuple` position by position; a `Tuple` whose items all fit `T` is also a `List[T]`.
- Records: width and depth. Every required target field must be a required source field of a subtype; an
  optional target field may be missing in the source, and when present must be a subtype. (Open records with
  optional fields make transitivity fail in one corner: `{a: String} <: {} <: {a?: Int}` but not directly.)
- `Table[...]` with more columns is a subtype of one with fewer (column rules as for records); `Table` without a
  schema is the top of tables. `NDArray`/`Model`: an unspecified dtype, rank or flavor accepts any.
- Type variables are only solved by `typesys.unify`; a free variable in the target is reported as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from typesys.types import (
    ANY,
    FLOAT,
    INT,
    NUMBER,
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

if TYPE_CHECKING:
    from typesys.registry import TypeRegistry

__all__ = ["Assignability", "assignable_uncached", "is_assignable"]


@dataclass(frozen=True, slots=True)
class Assignability:
    """The answer of `is_assignable`: truthy when assignable; `reason` says why not (or how it is)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


_YES = Assignability(True, "subtype")


def is_assignable(source: Type, target: Type, registry: TypeRegistry | None = None) -> Assignability:
    """Whether a value of type `source` may be passed where `target` is expected, without conversion.

    With a registry the answer is memoized in the registry's bounded cache.
    """
    if registry is not None:
        return registry.is_assignable(source, target)
    return assignable_uncached(source, target)


def _no(source: Type, target: Type, why: str) -> Assignability:
    return Assignability(False, f"{source} is not assignable to {target}: {why}")


def assignable_uncached(source: Type, target: Type) -> Assignability:
    """The subtyping decision itself, without a cache (registries call this through their cache)."""
    if source == target or target == ANY:
        return _YES
    if isinstance(target, TypeVar):
        return _no(
            source,
            target,
            f"the target is the free type variable {target}; solve it with typesys.unify and substitute first",
        )
    if isinstance(source, UnionType):
        for member in source.members:
            answer = assignable_uncached(member, target)
            if not answer:
                return _no(source, target, f"its member {member} is not ({answer.reason})")
        return _YES
    if isinstance(target, UnionType):
        for member in target.members:
            if assignable_uncached(source, member):
                return _YES
        why = "it fits none of the union's members"
        if _has_typevar(target):
            why += "; the union has free type variables: solve them with typesys.unify and substitute first"
        return _no(source, target, why)
    if isinstance(source, TypeVar):
        return _no(source, target, f"the source is the unsolved type variable {source}; unify first")
    if source == ANY:
        return _no(
            source,
            target,
            "Any is only assignable to Any; an implicit runtime-checked coercion (typesys.find_coercion) "
            "can pass it on",
        )
    if isinstance(source, NominalType):
        if isinstance(target, NominalType) and target.name == source.name:
            return _no(source, target, "two different nominal types share this name")
        parent = assignable_uncached(source.parent, target)
        if parent:
            return _YES
        return _no(source, target, f"its parent {source.parent} is not ({parent.reason})")
    return _structural(source, target)


def _structural(source: Type, target: Type) -> Assignability:
    """Structural rules, one per kind of target; a rule answers None when the source is of another kind."""
    rule = _STRUCTURAL_RULES.get(type(target))
    answer = rule(source, target) if rule is not None else None
    if answer is None:
        return _no(source, target, _kind_hint(source, target))
    return answer


def _to_primitive(source: Type, target: Type) -> Assignability | None:
    if target != NUMBER:
        return None
    if source in (INT, FLOAT):
        return _YES
    return _no(source, target, "only Int and Float are Numbers")


def _to_list(source: Type, target: ListType) -> Assignability | None:
    if isinstance(source, ListType):
        return _nested(source, target, assignable_uncached(source.item, target.item), "element")
    if isinstance(source, TupleType):
        for i, item in enumerate(source.items):
            answer = assignable_uncached(item, target.item)
            if not answer:
                return _no(source, target, f"tuple item [{i}] does not fit ({answer.reason})")
        return _YES
    return None


def _to_dict(source: Type, target: DictType) -> Assignability | None:
    if not isinstance(source, DictType):
        return None
    key = assignable_uncached(source.key, target.key)
    if not key:
        return _nested(source, target, key, "key")
    return _nested(source, target, assignable_uncached(source.value, target.value), "value")


def _to_tuple(source: Type, target: TupleType) -> Assignability | None:
    if not isinstance(source, TupleType):
        return None
    if len(source.items) != len(target.items):
        return _no(source, target, f"{len(source.items)} items where {len(target.items)} are expected")
    for i, (s, t) in enumerate(zip(source.items, target.items, strict=True)):
        answer = assignable_uncached(s, t)
        if not answer:
            return _no(source, target, f"item [{i}] does not fit ({answer.reason})")
    return _YES


def _to_record(source: Type, target: RecordType) -> Assignability | None:
    if not isinstance(source, RecordType):
        return None
    return _fields(source, target, source.fields, target.fields, "field")


def _to_table(source: Type, target: TableType) -> Assignability | None:
    if not isinstance(source, TableType):
        return None
    if target.columns is None:
        return _YES
    if source.columns is None:
        return _no(source, target, "the source table has no declared column schema")
    return _fields(source, target, source.columns, target.columns, "column")


def _to_ndarray(source: Type, target: NDArrayType) -> Assignability | None:
    if not isinstance(source, NDArrayType):
        return None
    if target.dtype is not None and source.dtype != target.dtype:
        return _no(source, target, f"dtype {source.dtype or 'unknown'} is not {target.dtype}")
    if target.rank is not None and source.rank != target.rank:
        return _no(source, target, f"rank {source.rank if source.rank is not None else 'unknown'}")
    return _YES


def _to_model(source: Type, target: ModelType) -> Assignability | None:
    if not isinstance(source, ModelType):
        return None
    if target.flavor is None:
        return _YES
    return _no(source, target, f"model flavor {source.flavor or 'unknown'} is not {target.flavor}")


# Keyed by the exact class of the target (the type classes are final): one dict lookup instead of a chain of
# isinstance tests. The key guarantees each rule's target type, hence `Any` for the target parameter here.
_STRUCTURAL_RULES: dict[type[Type], Callable[[Type, Any], Assignability | None]] = {
    Primitive: _to_primitive,
    ListType: _to_list,
    DictType: _to_dict,
    TupleType: _to_tuple,
    RecordType: _to_record,
    TableType: _to_table,
    NDArrayType: _to_ndarray,
    ModelType: _to_model,
}


def _has_typevar(t: Type) -> bool:
    return isinstance(t, TypeVar) or any(_has_typevar(c) for c in t.children())


def _kind_hint(source: Type, target: Type) -> str:
    if isinstance(target, NominalType):
        return f"it is not declared as (a subtype of) {target.name}"
    what = (
        f"{source} is not a kind of {target}" if isinstance(source, Primitive) else "different kinds of type"
    )
    return what + "; typesys.find_coercion tells whether a conversion exists"


def _nested(source: Type, target: Type, answer: Assignability, part: str) -> Assignability:
    if answer:
        return _YES
    return _no(source, target, f"the {part} type does not fit ({answer.reason})")


def _fields(
    source: Type, target: Type, have: tuple[Field, ...], want: tuple[Field, ...], what: str
) -> Assignability:
    by_name = {f.name: f for f in have}
    for wanted in want:
        got = by_name.get(wanted.name)
        if got is None:
            if wanted.required:
                return _no(source, target, f"the required {what} {wanted.name!r} is missing")
            continue
        if wanted.required and not got.required:
            return _no(source, target, f"the {what} {wanted.name!r} is required but optional in the source")
        answer = assignable_uncached(got.type, wanted.type)
        if not answer:
            return _no(source, target, f"the {what} {wanted.name!r} does not fit ({answer.reason})")
    return _YES
