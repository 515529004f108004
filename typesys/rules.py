"""`CoercionRule`, the conversion the registry holds, below both the registry and the built-in rules.

`typesys.registry` (which starts a default registry with the built-in rules) and `typesys.builtin_rules` (which
are coercion rules) both import it, so neither imports the other back. Import it from `typesys` or
`typesys.registry`, which re-export it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from typesys.types import Type

__all__ = ["CoercionKind", "CoercionRule"]

#: The safety class of a coercion rule.
CoercionKind = Literal["implicit", "explicit"]


@dataclass(frozen=True)
class CoercionRule:
    """A conversion from values of `source` (or any subtype) to `target`.

    `kind` is "implicit" (lossless, applied silently) or "explicit" (lossy or fallible: only through the
    conversion node `node`, e.g. "builtin/to_int@1"). `cost` orders alternative paths (cheaper wins).
    `convert` performs the conversion on one value. `output`, when given, computes the precise result type
    from the actual source type (e.g. a table's columns become the record fields); otherwise it is `target`.
    """

    source: Type
    target: Type
    kind: CoercionKind
    cost: float
    convert: Callable[[Any], Any] = field(compare=False, repr=False)
    node: str | None = None
    description: str = ""
    output: Callable[[Type], Type] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("implicit", "explicit"):
            raise ValueError(
                f"coercion rule {self.source} -> {self.target}: kind must be implicit or explicit"
            )
        if self.kind == "explicit" and not self.node:
            raise ValueError(
                f"explicit coercion rule {self.source} -> {self.target} must name its conversion node "
                "(e.g. node='myplugin/to_thing@1')"
            )
        if self.cost < 0:
            raise ValueError(f"coercion rule {self.source} -> {self.target}: cost must be >= 0")

    def result_type(self, source: Type) -> Type:
        """The type this rule produces from a value of type `source`."""
        return self.output(source) if self.output is not None else self.target
