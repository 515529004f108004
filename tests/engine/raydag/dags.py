"""Ray remote functions of the Ray DAG tests (module-level, as Ray and rayweave need to import them)."""

from __future__ import annotations

import ray


@ray.remote
def load(n):
    """The numbers 1..n (no annotations, as Ray code often has none)."""
    return list(range(1, n + 1))


@ray.remote
def square_all(xs: list[int]) -> list[int]:
    """Each number squared."""
    return [x * x for x in xs]


@ray.remote
def total(xs, *, start=0):
    """The sum of `xs`, from `start` (a keyword-only parameter: a rayweave param)."""
    return start + sum(xs)


@ray.remote
def combine(a, b):
    """a + b."""
    return a + b


@ray.remote
class Counter:
    """An actor: not something a workflow can hold."""

    def add(self, x):
        return x
