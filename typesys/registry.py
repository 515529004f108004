"""The explicit registry of types, coercion rules and validators.

There is no module-level registry: `TypeRegistry.default()` returns a new registry holding the built-in
coercion rules, and whoever owns it (the engine, a test, a plugin loader) passes it on. Plugins add nominal
types, coercions and validators to the registry they are given.

Each registry memoizes `is_assignable` in a bounded LRU cache, cleared whenever something is registered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from typesys.builtin_rules import builtin_rules
from typesys.rules import CoercionKind, CoercionRule
from typesys.subtype import Assignability, assignable_uncached
from typesys.types import PRIMITIVE_NAMES, ModelType, NominalType, Primitive, Type

__all__ = ["CoercionKind", "CoercionRule", "TypeRegistry", "Validator"]

#: A validator gets a value already checked against the parent type; it raises (any exception) or returns
#: False to reject it, and returns None or True to accept it.
Validator = Callable[[Any], "bool | None"]

_TYPEVAR_LIKE = re.compile(r"[A-Z][0-9]*\Z")
_NAMES_RESERVED = frozenset(PRIMITIVE_NAMES) | {
    "List",
    "Dict",
    "Tuple",
    "Table",
    "NDArray",
    "Tensor",
    "Model",
    "Optional",
    "Union",
    "None",
}


class TypeRegistry:
    """Nominal types, coercion rules and validators, plus the memo of `is_assignable` answers."""

    def __init__(self, *, cache_size: int = 8192) -> None:
        self._nominals: dict[str, NominalType] = {}
        self._descriptions: dict[str, str] = {}
        self._rules: list[CoercionRule] = []
        self._validators: dict[Type, Validator] = {}
        self._cache_size = cache_size
        self._assignable = functools.lru_cache(maxsize=cache_size)(assignable_uncached)

    @classmethod
    def default(cls) -> TypeRegistry:
        """A new registry with the built-in coercion rules (Int -> Float, String -> Int, ...)."""
        registry = cls()
        registry.add_coercions(builtin_rules())
        return registry

    def copy(self) -> TypeRegistry:
        """An independent registry with the same types, rules and validators (and an empty cache)."""
        other = TypeRegistry(cache_size=self._cache_size)
        other._nominals = dict(self._nominals)
        other._descriptions = dict(self._descriptions)
        other._rules = list(self._rules)
        other._validators = dict(self._validators)
        return other

    def __getstate__(self) -> dict[str, Any]:
        # The cache wrapper cannot be pickled (Ray ships registries to workers); it is rebuilt empty.
        state = dict(self.__dict__)
        del state["_assignable"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._assignable = functools.lru_cache(maxsize=self._cache_size)(assignable_uncached)

    def _changed(self) -> None:
        self._assignable.cache_clear()

    # --- nominal types -------------------------------------------------------------------------------

    def register_type(
        self, name: str, parent: Type, *, validator: Validator | None = None, description: str = ""
    ) -> NominalType:
        """Declare the nominal type `name` as a subtype of `parent` and return it.

        Registering the same name with the same parent again is allowed (plugins reload); a different parent
        is an error, as is a built-in name.
        """
        if name in _NAMES_RESERVED:
            raise ValueError(
                f"cannot register type {name!r}: it is a built-in type name; choose another name"
            )
        if _TYPEVAR_LIKE.match(name):
            raise ValueError(
                f"cannot register type {name!r}: one capital letter (and digits) reads as a type variable; "
                "choose a longer name"
            )
        t = NominalType(name, parent)
        existing = self._nominals.get(name)
        if existing is not None and existing != t:
            raise ValueError(
                f"type {name!r} is already registered with parent {existing.parent}; "
                f"it cannot be registered again with parent {parent}"
            )
        self._nominals[name] = t
        if description:
            self._descriptions[name] = description
        if validator is not None:
            self._validators[t] = validator
        self._changed()
        return t

    def nominal(self, name: str) -> NominalType | None:
        """The registered nominal type called `name`, or None."""
        return self._nominals.get(name)

    def nominal_types(self) -> tuple[NominalType, ...]:
        """Every registered nominal type, in registration order."""
        return tuple(self._nominals.values())

    def description(self, name: str) -> str:
        """The description given when `name` was registered ("" when none)."""
        return self._descriptions.get(name, "")

    # --- coercions -----------------------------------------------------------------------------------

    def add_coercion(
        self,
        source: Type,
        target: Type,
        convert: Callable[[Any], Any],
        *,
        kind: CoercionKind,
        cost: float,
        node: str | None = None,
        description: str = "",
        output: Callable[[Type], Type] | None = None,
    ) -> CoercionRule:
        """Register a coercion rule (see `CoercionRule`) and return it."""
        rule = CoercionRule(source, target, kind, cost, convert, node, description, output)
        self.add_coercions((rule,))
        return rule

    def add_coercions(self, rules: Iterable[CoercionRule]) -> None:
        """Register several coercion rules."""
        self._rules.extend(rules)
        self._changed()

    def coercions(self) -> tuple[CoercionRule, ...]:
        """Every registered coercion rule, in registration order."""
        return tuple(self._rules)

    # --- validators ----------------------------------------------------------------------------------

    def add_validator(self, t: Type, validator: Validator) -> None:
        """Make `check` also run `validator` on values of type `t` (a nominal type or `Model[flavor]`)."""
        if not isinstance(t, Type):
            raise TypeError(f"add_validator needs a typesys Type, got {t!r}")
        self._validators[t] = validator

    def validator(self, t: Type) -> Validator | None:
        """The validator registered for exactly `t`, or None."""
        return self._validators.get(t)

    def validators(self) -> dict[Type, Validator]:
        """Every registered validator, by the type it validates."""
        return dict(self._validators)

    def validators_for(self, types: Iterable[Type]) -> TypeRegistry | None:
        """A registry holding only the validators a check of values of `types` can call, or None when there is
        none: what an executor ships with a node's task so that its ports run the validators.

        Those are the validators of the nominal and model types inside `types` (their parents' too, and the
        validator of `Model` for a `Model[flavor]`). The registry is small and picklable when the validators are
        (module-level functions, or the lazy validators of plugins).
        """
        if not self._validators:
            return None
        found: dict[Type, Validator] = {}
        seen: set[Type] = set()
        stack = list(types)
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            validator = self._validators.get(t)
            if validator is not None:
                found[t] = validator
            if isinstance(t, ModelType) and t.flavor is not None:
                stack.append(ModelType(None))
            stack.extend(t.children())  # a nominal type's parent is among them
        if not found:
            return None
        slim = TypeRegistry(cache_size=256)
        slim._validators = found
        return slim

    # --- subtyping -----------------------------------------------------------------------------------

    def is_assignable(self, source: Type, target: Type) -> Assignability:
        """`typesys.is_assignable` memoized in this registry's bounded cache."""
        return self._assignable(source, target)

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the assignability cache."""
        return self._assignable.cache_info()

    # --- catalog -------------------------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        """The type catalog as JSON-ready data: primitives, structured kinds, nominal types, coercions."""
        from typesys.subtype import is_assignable

        primitives = []
        for name in PRIMITIVE_NAMES:
            t = Primitive(name)
            parents = [
                p for p in PRIMITIVE_NAMES if p not in (name, "Any") and is_assignable(t, Primitive(p))
            ]
            primitives.append({"name": name, "parents": parents or (["Any"] if name != "Any" else [])})
        return {
            "primitives": primitives,
            "structured": [
                "List[T]",
                "Dict[K, V]",
                "Tuple[A, B, ...]",
                "T | U",
                "{field: T, optional?: U}",
                "Table",
                "Table[column: T, ...]",
                "NDArray[dtype, rank]",
                "Model[flavor]",
            ],
            "nominal": [
                {"name": t.name, "parent": str(t.parent), "description": self.description(t.name)}
                for t in self._nominals.values()
            ],
            "coercions": [
                {
                    "source": str(r.source),
                    "target": str(r.target),
                    "kind": r.kind,
                    "cost": r.cost,
                    "node": r.node,
                    "description": r.description,
                }
                for r in self._rules
            ],
        }
