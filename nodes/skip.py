"""The `SKIP` sentinel: the value of an output port whose branch was not taken.

A node that receives `SKIP` on any input is itself skipped (all its outputs become `SKIP`) unless its spec says
`accepts_skipped`. The sentinel crosses process boundaries (Ray tasks, the durable store) and must stay the one
object there too, so that `value is SKIP` works everywhere.
"""

from __future__ import annotations

from typing import Any, Final, Literal

__all__ = ["SKIP", "SkipType", "is_skip"]


class SkipType:
    """Type of the `SKIP` singleton; do not instantiate it, use `nodes.SKIP`."""

    __slots__ = ()
    _instance: SkipType | None = None

    def __new__(cls) -> SkipType:
        # A class attribute rather than module state: it is written once, by the first (import-time-free)
        # construction below, and never changes afterwards.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self) -> str:
        # Returning a string makes pickle (and cloudpickle) store a reference to the module global `SKIP`, so
        # unpickling yields the very same object instead of a copy.
        return "SKIP"

    def __copy__(self) -> SkipType:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SkipType:
        return self

    def __bool__(self) -> Literal[False]:
        # Falsy so that `value or default` treats a skipped value like an absent one.
        return False

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final[SkipType] = SkipType()
"""The value of a port whose branch was not taken (see the module docstring)."""


def is_skip(value: object) -> bool:
    """Return True when `value` is the `SKIP` sentinel."""
    return value is SKIP
