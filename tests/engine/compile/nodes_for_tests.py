"""A tiny catalog of node types for compiler tests (plugin `t`), independent of the built-in library."""

from __future__ import annotations

from typing import Any, TypedDict, TypeVar

from nodes import Catalog, node

T = TypeVar("T")


@node(plugin="t", cheap=True)
def inc(x: int) -> int:
    """Add one."""
    return x + 1


@node(plugin="t", cheap=True)
def add(a: int, b: int = 0) -> int:
    """Add two ints."""
    return a + b


@node(plugin="t", cheap=True)
def total(xs: list[int]) -> int:
    """Sum a list."""
    return sum(xs)


@node(plugin="t", cheap=True)
def collect(a: int, b: int = 0, c: int = 0, d: int = 0) -> list[int]:
    """Gather up to four ints into a list."""
    return [a, b, c, d]


@node(plugin="t")
def slow(x: int) -> int:
    """An expensive node (not cheap): never fused."""
    return x * 2


@node(plugin="t")
def slow_add(a: int, b: int = 0) -> int:
    """An expensive node with two inputs."""
    return a + b + 1


@node(plugin="t")
def half(x: float) -> float:
    """Half of a float."""
    return x / 2


@node(plugin="t", cheap=True)
def first(xs: list[T]) -> T:
    """The first element."""
    return xs[0]


@node(plugin="t", cheap=True)
def pair(a: T, b: T) -> list[T]:
    """Two values of one type."""
    return [a, b]


@node(plugin="t", deterministic=False)
def now(x: int) -> float:
    """Not deterministic."""
    import time

    return time.time() + x


class Split(TypedDict):
    """Two outputs."""

    low: int
    high: int


@node(plugin="t", cheap=True)
def split(x: int) -> Split:
    """A node with two output ports."""
    return {"low": x - 1, "high": x + 1}


@node(plugin="t", cheap=True)
def scale(x: int, *, factor: int, offset: int = 0) -> int:
    """A node with params."""
    return x * factor + offset


@node(plugin="t", timeout_s=5.0, cheap=True)
def timed(x: int) -> int:
    """Cheap but with a timeout: not fusable."""
    return x


@node(plugin="t", cheap=True)
def text(s: str) -> str:
    """A string node."""
    return s


@node(plugin="t", cheap=True, retries=2)
def retried(x: int) -> int:
    """Cheap with retries."""
    return x


def definitions() -> list[Any]:
    """Every test node."""
    return [
        inc,
        add,
        total,
        collect,
        slow,
        slow_add,
        half,
        first,
        pair,
        now,
        split,
        scale,
        timed,
        text,
        retried,
    ]


def catalog() -> Catalog:
    """The built-in catalog plus the test nodes (the conversion nodes come from the built-ins)."""
    cat = Catalog.builtin()
    cat.extend(definitions())
    return cat


def doc(
    nodes: dict[str, Any], outputs: dict[str, str], inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A workflow document with the given parts."""
    return {
        "format": "rayweave.workflow/1",
        "name": "wf",
        "inputs": inputs or {},
        "nodes": nodes,
        "outputs": outputs,
    }
