"""Unification: solving the type variables of generic node signatures from the ports they are wired to.

`unify(pairs)` takes `(source, target)` pairs, each meaning "a value of `source` flows into `target`"
(an upstream output type and a port type, after the caller renamed each node's variables apart). Either side
may contain variables. A variable bound by several pairs gets the widest of its bindings when one of them
accepts the others (by subtyping or an implicit coercion: `T` fed `Int` and `Float` is `Float`); otherwise
unification fails naming both sides. Pairs without variables are ignored: checking them is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from typesys.errors import UnificationError
from typesys.types import (
    DictType,
    Field,
    ListType,
    NominalType,
    RecordType,
    TableType,
    TupleType,
    Type,
    TypeVar,
    UnionType,
    union,
)

if TYPE_CHECKING:
    from typesys.registry import TypeRegistry

__all__ = ["Substitution", "free_vars", "substitute", "unify"]

#: A solution of unification: type variable name -> type.
Substitution = dict[str, Type]


def free_vars(t: Type) -> frozenset[str]:
    """The names of the type variables occurring in `t`."""
    if isinstance(t, TypeVar):
        return frozenset((t.name,))
    found: frozenset[str] = frozenset()
    for child in t.children():
        found |= free_vars(child)
    return found


def substitute(t: Type, subst: Substitution) -> Type:
    """`t` with every variable that `subst` binds replaced by its binding (applied once, not recursively)."""
    if not subst or not free_vars(t):
        return t
    if isinstance(t, TypeVar):
        return subst.get(t.name, t)
    if isinstance(t, ListType):
        return ListType(substitute(t.item, subst))
    if isinstance(t, DictType):
        return DictType(substitute(t.key, subst), substitute(t.value, subst))
    if isinstance(t, TupleType):
        return TupleType(tuple(substitute(i, subst) for i in t.items))
    if isinstance(t, UnionType):
        return union(*(substitute(m, subst) for m in t.members))
    if isinstance(t, RecordType):
        return RecordType(_sub_fields(t.fields, subst))
    if isinstance(t, TableType):
        return TableType(None if t.columns is None else _sub_fields(t.columns, subst))
    if isinstance(t, NominalType):
        return NominalType(t.name, substitute(t.parent, subst))
    return t


def _sub_fields(fields: tuple[Field, ...], subst: Substitution) -> tuple[Field, ...]:
    return tuple(Field(f.name, substitute(f.type, subst), f.required) for f in fields)


def unify(pairs: Iterable[tuple[Type, Type]], registry: TypeRegistry | None = None) -> Substitution:
    """Solve the type variables of `pairs` (see the module docstring); raises `UnificationError`."""
    return _Unifier(registry).run(list(pairs))


class _Unifier:
    def __init__(self, registry: TypeRegistry | None) -> None:
        self.registry = registry
        self.subst: Substitution = {}
        self.origin: dict[str, tuple[Type, Type]] = {}

    def run(self, pairs: list[tuple[Type, Type]]) -> Substitution:
        for source, target in pairs:
            self.match(source, target, (source, target))
        # Resolve chains (T bound to List[U], U bound to Int) until nothing changes.
        for _ in range(len(self.subst) + 1):
            resolved = {name: substitute(t, self.subst) for name, t in self.subst.items()}
            if resolved == self.subst:
                break
            self.subst = resolved
        for name, t in self.subst.items():
            if name in free_vars(t):
                source, target = self.origin[name]
                raise UnificationError(
                    f"type variable {name} would have to contain itself ({name} = {t}) when {source} flows "
                    f"into {target}; the types are infinitely nested"
                )
        return self.subst

    def widen(self, a: Type, b: Type) -> Type | None:
        """The one of `a` and `b` that accepts the other, or None."""
        from typesys.coerce import find_coercion
        from typesys.subtype import is_assignable

        if is_assignable(a, b, self.registry):
            return b
        if is_assignable(b, a, self.registry):
            return a
        for low, high in ((a, b), (b, a)):
            c = find_coercion(low, high, self.registry)
            if c is not None and c.kind != "explicit":
                return high
        return None

    def bind(self, var: TypeVar, t: Type, pair: tuple[Type, Type]) -> None:
        if t == var:
            return
        current = self.subst.get(var.name)
        if current is None:
            self.subst[var.name] = t
            self.origin[var.name] = pair
            return
        if isinstance(current, TypeVar) or free_vars(current) or free_vars(t):
            # Bound to something generic: match structurally so inner variables get solved too.
            self.match(t, current, pair)
            return
        wider = self.widen(current, t)
        if wider is None:
            first_source, first_target = self.origin[var.name]
            raise UnificationError(
                f"type variable {var.name} cannot be both {current} (from {first_source} flowing into "
                f"{first_target}) and {t} (from {pair[0]} flowing into {pair[1]}); make the two ports agree "
                "or insert a conversion"
            )
        if wider != current:
            self.subst[var.name] = wider
            self.origin[var.name] = pair

    def match(self, source: Type, target: Type, pair: tuple[Type, Type]) -> None:
        if source == target:
            return
        if isinstance(target, TypeVar):
            self.bind(target, source, pair)
            return
        if isinstance(source, TypeVar):
            self.bind(source, target, pair)
            return
        if not (free_vars(source) or free_vars(target)):
            return
        if isinstance(target, UnionType):
            self.match_union(source, target, pair)
        elif isinstance(source, UnionType):
            self.match_each(source.members, target, pair)
        elif isinstance(source, ListType) and isinstance(target, ListType):
            self.match(source.item, target.item, pair)
        elif isinstance(source, TupleType) and isinstance(target, ListType):
            self.match_each(source.items, target.item, pair)
        elif isinstance(source, DictType) and isinstance(target, DictType):
            self.match(source.key, target.key, pair)
            self.match(source.value, target.value, pair)
        elif isinstance(source, TupleType) and isinstance(target, TupleType):
            self.match_tuples(source, target, pair)
        elif isinstance(source, RecordType) and isinstance(target, RecordType):
            self.match_fields(source.fields, target.fields, pair)
        elif isinstance(source, TableType) and isinstance(target, TableType):
            self.match_fields(source.columns or (), target.columns or (), pair)
        elif isinstance(source, NominalType):
            self.match(source.parent, target, pair)
        else:
            self.conflict(source, target, pair, "their shapes differ")

    def match_tuples(self, source: TupleType, target: TupleType, pair: tuple[Type, Type]) -> None:
        if len(source.items) != len(target.items):
            self.conflict(source, target, pair, "tuples of different lengths")
        for s, t in zip(source.items, target.items, strict=True):
            self.match(s, t, pair)

    def match_each(self, sources: tuple[Type, ...], target: Type, pair: tuple[Type, Type]) -> None:
        """Match every one of `sources` (a union's members, a tuple's items) with `target`."""
        for source in sources:
            self.match(source, target, pair)

    def match_fields(self, have: tuple[Field, ...], want: tuple[Field, ...], pair: tuple[Type, Type]) -> None:
        by_name = {f.name: f for f in have}
        for f in want:
            got = by_name.get(f.name)
            if got is not None:
                self.match(got.type, f.type, pair)

    def match_union(self, source: Type, target: UnionType, pair: tuple[Type, Type]) -> None:
        from typesys.subtype import is_assignable

        fixed = [m for m in target.members if not free_vars(m)]
        generic = [m for m in target.members if free_vars(m)]
        members = source.members if isinstance(source, UnionType) else (source,)
        # Source members that a concrete target member already accepts need no variable.
        rest = [s for s in members if not any(is_assignable(s, f, self.registry) for f in fixed)]
        if not rest:
            return
        if len(generic) != 1:
            self.conflict(source, target, pair, "the union has several generic members to choose from")
        self.match(union(*rest), generic[0], pair)

    def conflict(self, source: Type, target: Type, pair: tuple[Type, Type], why: str) -> None:
        raise UnificationError(
            f"cannot unify {source} with {target} ({why}) when {pair[0]} flows into {pair[1]}"
        )
