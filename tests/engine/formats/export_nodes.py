"""Python nodes of a test module, for the tests of `engine.formats.ray_script`: several output ports, a param,
an implicit Int -> Float coercion, a generator, a class node and a list port bound element by element."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict

from nodes import SKIP, node


class Stats(TypedDict):
    """The outputs of `stats`."""

    total: int
    count: int


@node(plugin="exporttest")
def stats(values: list[int], *, offset: int = 0) -> Stats:
    """The sum (plus `offset`) and the number of `values`."""
    return {"total": sum(values) + offset, "count": len(values)}


@node(plugin="exporttest")
def ratio(a: float, b: float) -> float:
    """`a / b` (wired to Int outputs: the engine widens them to Float)."""
    return a / b


@node(plugin="exporttest")
def countdown(n: int) -> Iterator[int]:
    """Yield n, n - 1, ..., 0; the last value is the result."""
    yield from range(n, -1, -1)


@node(plugin="exporttest")
class Scaler:
    """A class node: `setup` runs once per instance, then each call scales `x`."""

    def setup(self) -> None:
        """Choose the factor."""
        self.factor = 10

    def __call__(self, x: float) -> float:
        """`x` times the factor."""
        return x * self.factor


@dataclass
class Parts:
    """The outputs of `parts`: a dataclass, read by attribute."""

    whole: int
    tenths: int


@node(plugin="exporttest", resources={"num_cpus": 0.5})
async def parts(x: float) -> Parts:
    """An async node with half a CPU: the whole and the tenths of `x`."""
    return Parts(int(x), int(x * 10) % 10)


@node(plugin="exporttest")
def skipper(x: int) -> int:
    """Skip its output (and so the nodes wired to it) when `x` is odd."""
    return SKIP if x % 2 else x  # type: ignore[return-value]


def workflow() -> dict[str, object]:
    """A document using every node above."""
    return {
        "format": "rayweave.workflow/1",
        "name": "export-nodes",
        "inputs": {"xs": {"type": "List[Int]", "default": [1, 2, 3]}, "n": {"type": "Int"}},
        "nodes": {
            "s": {"type": "exporttest/stats@1", "in": {"values": "$inputs.xs"}, "params": {"offset": 4}},
            "r": {"type": "exporttest/ratio@1", "in": {"a": "s.total", "b": "s.count"}},
            "c": {"type": "exporttest/countdown@1", "in": {"n": "$inputs.n"}},
            "k": {"type": "exporttest/Scaler@1", "in": {"x": "r"}},
            "all": {"type": "builtin/sum@1", "in": {"values": ["s.total", "c", {"value": 5}]}},
            "p": {"type": "exporttest/parts@1", "in": {"x": "r"}},
            "m": {"type": "exporttest/skipper@1", "in": {"x": "$inputs.n"}},
            "after": {"type": "builtin/add@1", "in": {"a": "m", "b": {"value": 1}}},
        },
        "outputs": {
            "ratio": "r.out",
            "scaled": "k.out",
            "countdown": "c.out",
            "all": "all.out",
            "n": "$inputs.n",
            "whole": "p.whole",
            "tenths": "p.tenths",
            "skipped": "after.out",
        },
    }
