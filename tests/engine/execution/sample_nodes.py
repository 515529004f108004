"""Small nodes used by the executor tests (module-level so Ray workers can import them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from nodes import context, node


@node(plugin="t")
def add(a: int, b: int = 0) -> int:
    """a + b."""
    return a + b


@node(plugin="t")
def double(x: int) -> int:
    """2x."""
    return 2 * x


@node(plugin="t")
def total(xs: list[int]) -> int:
    """Sum of a list."""
    return sum(xs)


@node(plugin="t")
def boom(x: int) -> int:
    """Always fails."""
    raise ValueError(f"boom on {x}")


@node(plugin="t")
def wrong_type(x: int) -> int:
    """Returns a string despite its Int output."""
    return f"not an int: {x}"  # type: ignore[return-value]


@node(plugin="t")
def nap(x: int, *, seconds: float = 0.2) -> int:
    """Sleeps, then returns x."""
    time.sleep(seconds)
    return x


@node(plugin="t", retries={"max_attempts": 3, "backoff": "fixed", "initial_s": 0.01, "jitter": False})
def flaky(x: int, *, marker: str, failures: int = 2) -> int:
    """Fails `failures` times (counted in the file `marker`), then returns x."""
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < failures:
        raise ConnectionError(f"transient failure {count + 1}")
    return x


@node(plugin="t")
def counted(x: int, *, marker: str, seconds: float = 0.0) -> int:
    """Appends a line to `marker` each time it runs (to count executions), sleeps `seconds`, returns x."""
    with Path(marker).open("a") as f:
        f.write("run\n")
    time.sleep(seconds)
    return x


@node(plugin="t")
def steps(n: int) -> Iterator[int]:
    """Yields 1..n with progress; the last value is the result."""
    for i in range(1, n + 1):
        context.current().progress(i / n, f"step {i}")
        yield i


@node(plugin="t")
def chatty(x: int) -> int:
    """Logs a line."""
    context.current().logger.info("hello from %s", x)
    return x


@node(plugin="t", tags=("external:test-service",))
def service(x: int, *, fail: bool = True) -> int:
    """Calls a (pretend) external service that is down when `fail`."""
    if fail:
        raise ConnectionError("service unavailable")
    return x


@node(plugin="t", deterministic=False, cache=False)
def noisy(x: int) -> float:
    """Non-deterministic: x plus the time."""
    return x + time.time() % 1


class _Scaler:
    """A stateful class node: setup() counts constructions."""

    def setup(self) -> None:
        self.factor = 10
        self.calls = 0

    def __call__(self, x: int) -> int:
        self.calls += 1
        return x * self.factor + self.calls - 1


# Applied as a call, not as a class decorator, so type checkers see the `NodeDefinition` it returns.
Scaler = node("Scaler", plugin="t")(_Scaler)


@node(plugin="t", deterministic=False)
def fetch(x: int, *, marker: str) -> int:
    """Non-deterministic by declaration (think: reads a remote source); counts its runs in `marker`."""
    with Path(marker).open("a") as f:
        f.write("fetch\n")
    return x


@node(plugin="t", deterministic=False, cache=False)
def niceness(x: int) -> int:
    """The CPU niceness of the process that runs this node (x is ignored)."""
    import os

    return os.nice(0)


@node(plugin="t", accepts_skipped=True)
def present(xs: list[int]) -> int:
    """How many elements arrived (skipped elements are left out of the list for this node)."""
    return len(xs)


@node(plugin="t")
def mean(xs: list[float]) -> float:
    """Mean of a list of floats."""
    return sum(xs) / len(xs)


@node(plugin="t", retries={"max_attempts": 2, "backoff": "fixed", "initial_s": 0.05, "jitter": False})
def slow_at_first(x: int, *, marker: str, first_s: float = 30.0, later_s: float = 0.0) -> int:
    """Sleeps `first_s` on attempt 1 and `later_s` on later ones (each attempt appends its number to the file
    `marker`); returns x plus 100 times the number of the attempt that finished."""
    attempt = context.current().attempt
    with Path(marker).open("a") as f:
        f.write(f"{attempt}\n")
    time.sleep(first_s if attempt == 1 else later_s)
    return x + 100 * attempt


@node(plugin="t")
def anything(x: int, *, text: str = "x") -> object:
    """An untyped output (Any) holding `text`: feeds a typed port through a runtime-checked coercion."""
    return text


@node(plugin="t")
def type_name(x: object) -> str:
    """The Python type name of x (Any input): shows what a port really received."""
    return type(x).__name__
