"""Whether a value of one port type may flow into another, and how well: the compiler's own rules.

The order of the checks is the compiler's (`engine.compile.typecheck._check_edge`): a subtype fits as it is; else
the cheapest coercion (`typesys.find_coercion`) decides: an implicit one is applied silently, an explicit one
needs a conversion node. Type variables on either side are solved by unification, as the catalog's
`find(accepts=...)` does. Nothing here knows about nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import typesys

FitKind = Literal["exact", "subtype", "generic", "element", "implicit", "any", "explicit"]

#: How much each kind of fit says about a suggestion, from an exact match down to a conversion node.
#: A port of type Any (or a bare type variable) takes everything, so it says little about what comes next.
FIT_SCORES: dict[str, float] = {
    "exact": 1.0,
    "subtype": 0.85,
    "generic": 0.75,
    "element": 0.7,
    "implicit": 0.6,
    "any": 0.35,
    "explicit": 0.2,
}


@dataclass(frozen=True)
class Fit:
    """How `source` fits `target`: the kind of fit, its score (`FIT_SCORES`), and for a coercion its
    description and the conversion nodes an explicit one needs."""

    kind: FitKind
    score: float
    coercion: dict[str, Any] | None = None
    via: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"kind": self.kind, "score": self.score, "coercion": self.coercion, "via": list(self.via)}


def _takes_anything(t: typesys.Type) -> bool:
    return t == typesys.ANY or isinstance(t, typesys.TypeVar)


def _fit(kind: FitKind, coercion: Any = None) -> Fit:
    return Fit(
        kind,
        FIT_SCORES[kind],
        coercion.to_json() if coercion is not None else None,
        tuple(coercion.nodes) if coercion is not None else (),
    )


def port_fit(
    source: typesys.Type, target: typesys.Type, registry: typesys.TypeRegistry | None = None
) -> Fit | None:
    """How a value of `source` fits a port of type `target`, or None when it cannot (not even through a
    conversion node)."""
    if _takes_anything(target):
        return _fit("any")
    if source == target:
        return _fit("exact")
    if typesys.is_assignable(source, target, registry=registry):
        return _fit("subtype")
    if typesys.free_vars(source) or typesys.free_vars(target):
        try:
            subst = typesys.unify([(source, target)], registry=registry)
        except (TypeError, ValueError):
            subst = None
        if subst is not None and typesys.is_assignable(
            typesys.substitute(source, subst), typesys.substitute(target, subst), registry=registry
        ):
            return _fit("generic")
    coercion = typesys.find_coercion(source, target, registry=registry)
    if coercion is None:
        return None
    if coercion.kind == "explicit":
        return _fit("explicit", coercion)
    if coercion.kind == "implicit" and _takes_anything(source):
        # An Any output reaches every port through a runtime check: it says nothing about the port either.
        return _fit("any", coercion)
    return _fit("implicit", coercion)


def element_fit(
    source: typesys.Type, target: typesys.Type, registry: typesys.TypeRegistry | None = None
) -> Fit | None:
    """How a value of `source` fits a port of type `List[X]` as one element of a list binding (`"values":
    ["a.out", "b.out"]`, which the compiler checks element by element): kind `element` when `source` fits `X`
    by subtype, type variables or an implicit coercion; None otherwise (or when `target` is no list)."""
    if not isinstance(target, typesys.ListType) or _takes_anything(target.item):
        return None
    fit = port_fit(source, target.item, registry)
    if fit is None or fit.kind in ("any", "explicit"):
        return None
    return Fit("element", FIT_SCORES["element"], fit.coercion, fit.via)
