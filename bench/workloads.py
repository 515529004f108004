"""Workflow documents the benchmarks (and some tests) run: shapes whose timing is known in advance."""

from __future__ import annotations

from typing import Any


def sleep_chain(steps: int, seconds: float, *, name: str = "bench-chain") -> dict[str, Any]:
    """A chain of `steps` `builtin/sleep@1` nodes passing the input `x` through, one after another.

    Its node events arrive one by one over about `steps * seconds`, while the run is live: what a stream, a bus
    or a page watching a run sees.
    """
    nodes: dict[str, Any] = {}
    previous = "$inputs.x"
    for i in range(steps):
        nodes[f"s{i}"] = {
            "type": "builtin/sleep@1",
            "in": {"value": previous},
            "params": {"seconds": seconds},
        }
        previous = f"s{i}.out"
    return {
        "format": "rayweave.workflow/1",
        "name": name,
        "inputs": {"x": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"x": previous},
    }
