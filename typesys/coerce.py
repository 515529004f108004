"""Coercions: how a value of one type becomes a value of another, and the cheapest way to do it.

`find_coercion(source, target)` returns a `Coercion` whose `kind` is

- "identity" when `source` is assignable to `target` (subtyping covers `T -> T | U`, `T -> Optional[T]`
  and `record -> record with fewer fields`, which need no change to the value; cost 0);
- "implicit" when only lossless conversions are involved (`Int -> Float`, `List[Int] -> List[Float]`
  element-wise, unions member by member). A few implicit coercions are *runtime-checked* downcasts from
  untyped producers: `Any -> T`, `Table -> Table[schema]` and `Dict[String, Any] -> record` pass the value
  on unchanged after `check` accepts it, so untyped producers can feed typed consumers;
- "explicit" when a lossy or fallible rule is on the path (`Float -> Int`, `String -> Int`, ...): every
  explicit step names the conversion node (`CoercionStep.node`) that the compiler inserts for it.

The search is a cheapest-path search over the registry's rules (at most `MAX_RULE_STEPS` rule applications),
finishing with an identity or implicit structural coercion. Explicit rules apply to whole values, never
element-wise (there is no conversion node for that).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from typesys.check import check, matches
from typesys.errors import CoercionError, TypeCheckError
from typesys.registry import CoercionRule, TypeRegistry
from typesys.types import (
    ANY,
    FLOAT,
    STRING,
    DictType,
    ListType,
    RecordType,
    TableType,
    TupleType,
    Type,
    UnionType,
)

__all__ = ["MAX_RULE_STEPS", "RUNTIME_CHECK_COST", "Coercion", "CoercionStep", "find_coercion"]

#: The longest chain of registered rules the search tries.
MAX_RULE_STEPS = 3
#: Cost of a runtime-checked downcast: dearer than a lossless conversion, cheaper than any explicit rule.
RUNTIME_CHECK_COST = 5.0

CoercionKindOrIdentity = Literal["identity", "implicit", "explicit"]


@dataclass(frozen=True)
class CoercionStep:
    """One conversion on the path. Explicit steps name the conversion node (`node`) that performs them."""

    source: Type
    target: Type
    kind: Literal["implicit", "explicit"]
    cost: float
    node: str | None
    description: str
    convert: Callable[[Any], Any] = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description of the step."""
        return {
            "source": str(self.source),
            "target": str(self.target),
            "kind": self.kind,
            "cost": self.cost,
            "node": self.node,
            "description": self.description,
        }


@dataclass(frozen=True)
class Coercion:
    """A way to turn values of `source` into values of `target`: `kind`, total `cost` and `steps`."""

    source: Type
    target: Type
    kind: CoercionKindOrIdentity
    cost: float
    steps: tuple[CoercionStep, ...] = ()

    def apply(self, value: Any) -> Any:
        """Convert `value` (a value of `source`) step by step; raises `CoercionError` when a step fails."""
        for step in self.steps:
            try:
                value = step.convert(value)
            except CoercionError:
                raise
            except TypeCheckError as exc:
                raise CoercionError(f"cannot pass the value on as {step.target}: {exc}") from exc
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise CoercionError(f"converting {step.source} to {step.target} failed: {exc}") from exc
        return value

    @property
    def nodes(self) -> tuple[str, ...]:
        """The conversion nodes of the explicit steps, in order."""
        return tuple(s.node for s in self.steps if s.node is not None)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description of the coercion."""
        return {
            "source": str(self.source),
            "target": str(self.target),
            "kind": self.kind,
            "cost": self.cost,
            "steps": [s.to_json() for s in self.steps],
        }


def find_coercion(source: Type, target: Type, registry: TypeRegistry | None = None) -> Coercion | None:
    """The cheapest coercion from `source` to `target`, or None when there is none.

    Without a registry the built-in rules (`TypeRegistry.default()`) are used.
    """
    reg = registry if registry is not None else TypeRegistry.default()
    return _Search(reg).find(source, target)


def _combine(source: Type, target: Type, steps: list[CoercionStep]) -> Coercion:
    if not steps:
        return Coercion(source, target, "identity", 0.0, ())
    kind: CoercionKindOrIdentity = "explicit" if any(s.kind == "explicit" for s in steps) else "implicit"
    return Coercion(source, target, kind, sum(s.cost for s in steps), tuple(steps))


class _Search:
    """One coercion search against one registry."""

    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry
        self.rules = registry.coercions()

    def assignable(self, source: Type, target: Type) -> bool:
        return bool(self.registry.is_assignable(source, target))

    def find(self, source: Type, target: Type) -> Coercion | None:
        best: tuple[float, list[CoercionStep]] | None = None
        tie = itertools.count()
        # The last element says whether the state came from a catch-all rule (source Any, e.g. to_string):
        # those end a path, so "Int | Null -> String -> Int" is never offered as a way to an Int.
        queue: list[tuple[float, int, Type, list[CoercionStep], bool]] = [(0.0, next(tie), source, [], False)]
        seen: set[Type] = set()
        while queue:
            cost, _, state, steps, terminal = heapq.heappop(queue)
            if best is not None and cost >= best[0]:
                break
            if state in seen:
                continue
            seen.add(state)
            finish = self.direct(state, target)
            if finish is not None and (best is None or cost + finish.cost < best[0]):
                best = (cost + finish.cost, steps + ([finish.step] if finish.step is not None else []))
            if terminal or len(steps) >= MAX_RULE_STEPS:
                continue
            for rule in self.rules:
                if self.assignable(state, rule.source):
                    produced = rule.result_type(state)
                    if produced not in seen:
                        step = _rule_step(rule, state, produced)
                        item = (cost + rule.cost, next(tie), produced, [*steps, step], rule.source == ANY)
                        heapq.heappush(queue, item)
        if best is None:
            return None
        return _combine(source, target, best[1])

    # --- identity and implicit structural coercions -------------------------------------------------

    def direct(self, source: Type, target: Type) -> _Direct | None:
        """Identity or the cheapest implicit coercion that needs no rule chain at the top."""
        if self.assignable(source, target):
            return _Direct("identity", 0.0, None)
        options = [
            opt
            for opt in (
                self.runtime_checked(source, target),
                self.implicit_rule(source, target),
                self.structural(source, target),
            )
            if opt is not None
        ]
        return min(options, key=lambda o: o.cost) if options else None

    def runtime_checked(self, source: Type, target: Type) -> _Direct | None:
        untyped = (
            source == ANY
            or (source == TableType(None) and isinstance(target, TableType))
            or (source == DictType(STRING, ANY) and isinstance(target, RecordType))
        )
        if not untyped:
            return None
        registry = self.registry

        def convert(value: Any) -> Any:
            check(value, target, registry=registry)
            return value

        step = CoercionStep(source, target, "implicit", RUNTIME_CHECK_COST, None, "runtime-checked", convert)
        return _Direct("implicit", RUNTIME_CHECK_COST, step)

    def implicit_rule(self, source: Type, target: Type) -> _Direct | None:
        best: _Direct | None = None
        for rule in self.rules:
            if rule.kind != "implicit" or not self.assignable(source, rule.source):
                continue
            produced = rule.result_type(source)
            if self.assignable(produced, target) and (best is None or rule.cost < best.cost):
                best = _Direct("implicit", rule.cost, _rule_step(rule, source, target))
        return best

    def structural(self, source: Type, target: Type) -> _Direct | None:
        if isinstance(source, UnionType):
            return self.from_union(source, target)
        if isinstance(target, UnionType):
            options = [d for m in target.members if (d := self.direct(source, m)) is not None]
            if not options:
                return None
            return min(options, key=lambda o: o.cost)
        if isinstance(source, ListType | TupleType) and isinstance(target, ListType):
            return self.sequence_to_list(source, target)
        if isinstance(source, TupleType) and isinstance(target, TupleType):
            return self.tuple_to_tuple(source, target)
        if isinstance(source, DictType) and isinstance(target, DictType):
            return self.dict_to_dict(source, target)
        if isinstance(source, RecordType) and isinstance(target, RecordType):
            return self.record_to_record(source, target)
        if isinstance(source, TableType) and isinstance(target, TableType):
            return self.table_to_table(source, target)
        return None

    def from_union(self, source: UnionType, target: Type) -> _Direct | None:
        parts: list[tuple[Type, _Direct]] = []
        for member in source.members:
            d = self.direct(member, target)
            if d is None:
                return None
            parts.append((member, d))
        registry = self.registry

        def convert(value: Any) -> Any:
            # A value belongs to the first member it matches; its member's coercion converts it.
            for member, d in parts:
                if matches(value, member, registry=registry):
                    return d.apply(value)
            raise CoercionError(f"value {value!r} is none of the members of {source}")

        cost = max(d.cost for _, d in parts)
        return _Direct("implicit", cost, _implicit(source, target, cost, "member by member", convert))

    def sequence_to_list(self, source: ListType | TupleType, target: ListType) -> _Direct | None:
        items = (source.item,) if isinstance(source, ListType) else source.items
        converters = []
        for item in items:
            d = self.direct(item, target.item)
            if d is None:
                return None
            converters.append(d)
        cost = max((d.cost for d in converters), default=0.0)
        if isinstance(source, ListType):
            only = converters[0]

            def convert(value: Any) -> Any:
                return [only.apply(v) for v in value]

        else:

            def convert(value: Any) -> Any:
                return [d.apply(v) for d, v in zip(converters, value, strict=True)]

        return _Direct("implicit", cost, _implicit(source, target, cost, "element-wise", convert))

    def tuple_to_tuple(self, source: TupleType, target: TupleType) -> _Direct | None:
        if len(source.items) != len(target.items):
            return None
        converters = []
        for s, t in zip(source.items, target.items, strict=True):
            d = self.direct(s, t)
            if d is None:
                return None
            converters.append(d)
        cost = sum(d.cost for d in converters)

        def convert(value: Any) -> Any:
            return tuple(d.apply(v) for d, v in zip(converters, value, strict=True))

        return _Direct("implicit", cost, _implicit(source, target, cost, "item by item", convert))

    def dict_to_dict(self, source: DictType, target: DictType) -> _Direct | None:
        key = self.direct(source.key, target.key)
        value_d = self.direct(source.value, target.value)
        if key is None or value_d is None:
            return None
        cost = key.cost + value_d.cost

        def convert(value: Any) -> Any:
            return {key.apply(k): value_d.apply(v) for k, v in value.items()}

        return _Direct("implicit", cost, _implicit(source, target, cost, "entry by entry", convert))

    def record_to_record(self, source: RecordType, target: RecordType) -> _Direct | None:
        by_name = {f.name: f for f in source.fields}
        converters: dict[str, _Direct] = {}
        for wanted in target.fields:
            got = by_name.get(wanted.name)
            if got is None:
                if wanted.required:
                    return None
                continue
            if wanted.required and not got.required:
                return None
            d = self.direct(got.type, wanted.type)
            if d is None:
                return None
            if d.kind != "identity":
                converters[wanted.name] = d
        cost = sum(d.cost for d in converters.values())

        def convert(value: Any) -> Any:
            data = dict(value) if isinstance(value, Mapping) else _record_fields(value, by_name)
            for name, d in converters.items():
                if name in data:
                    data[name] = d.apply(data[name])
            return data

        return _Direct("implicit", cost, _implicit(source, target, cost, "field by field", convert))

    def table_to_table(self, source: TableType, target: TableType) -> _Direct | None:
        if source.columns is None or target.columns is None:
            return None
        by_name = {c.name: c for c in source.columns}
        converters: dict[str, _Direct] = {}
        for wanted in target.columns:
            got = by_name.get(wanted.name)
            if got is None:
                if wanted.required:
                    return None
                continue
            if wanted.required and not got.required:
                return None
            d = self.direct(got.type, wanted.type)
            if d is None:
                return None
            if d.kind != "identity":
                converters[wanted.name] = d
        cost = sum(d.cost for d in converters.values())

        def convert(value: Any) -> Any:
            return _convert_columns(value, converters)

        return _Direct("implicit", cost, _implicit(source, target, cost, "column by column", convert))


def _convert_columns(table: Any, converters: Mapping[str, _Direct]) -> Any:
    """Convert the named columns of an Arrow table value by value (numbers to float are cast by Arrow)."""
    import pyarrow as pa

    for name, d in converters.items():
        index = table.schema.get_field_index(name)
        if index < 0:
            continue  # an optional column that this table does not have
        column = table.column(index)
        if d.step is not None and d.step.target == FLOAT:
            converted = column.cast(pa.float64())
        else:
            converted = pa.array([d.apply(v) for v in column.to_pylist()])
        table = table.set_column(index, name, converted)
    return table


@dataclass(frozen=True)
class _Direct:
    """A finishing move of the search: identity, or one implicit step."""

    kind: Literal["identity", "implicit"]
    cost: float
    step: CoercionStep | None

    def apply(self, value: Any) -> Any:
        return value if self.step is None else self.step.convert(value)


def _record_fields(value: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    missing = object()
    data = {}
    for name in fields:
        got = getattr(value, name, missing)
        if got is not missing:
            data[name] = got
    return data


def _implicit(
    source: Type, target: Type, cost: float, how: str, convert: Callable[[Any], Any]
) -> CoercionStep:
    return CoercionStep(source, target, "implicit", cost, None, how, convert)


def _rule_step(rule: CoercionRule, source: Type, produced: Type) -> CoercionStep:
    return CoercionStep(source, produced, rule.kind, rule.cost, rule.node, rule.description, rule.convert)
