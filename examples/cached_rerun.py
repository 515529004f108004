"""A cached rerun: the second run of the same workflow with the same inputs is answered from the cache.

The first run spends about a second in `slow_square`; the rerun finds the cache key of the output node
(computed before anything runs, from node types, code versions, params and inputs) and returns at once,
without touching a Ray worker. Run `python -m examples.cached_rerun` to see both timings.
"""

from __future__ import annotations

import time

from engine.workflow import Workflow
from nodes import node


@node(plugin="examples")
def slow_square(x: int, *, seconds: float = 1.0) -> int:
    """Square `x` slowly (stands for any expensive, deterministic computation)."""
    time.sleep(seconds)
    return x * x


workflow = Workflow("cached-rerun", description="An expensive node whose rerun comes from the cache.")
x = workflow.input("x", "Int", default=12)
workflow.output("square", workflow.add("square", slow_square, x=x))


def main() -> None:
    """Run the workflow twice and print how long each run took."""
    import engine

    for label in ("first run", "rerun"):
        started = time.perf_counter()
        result = engine.run(workflow, {"x": 12})
        print(
            f"{label}: {result.outputs['square']} in {time.perf_counter() - started:.3f} s ({result.status})"
        )


if __name__ == "__main__":
    main()
