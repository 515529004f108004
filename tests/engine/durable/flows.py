"""Nodes and workflows of the durability tests (module-level, so Ray workers and driver subprocesses import
them). Each node appends one line to `<log>/<node id>` when it finishes its body: the side-effect counter that
shows how often a node really ran."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.workflow import Workflow
from nodes import context, node


def _count(log: str) -> None:
    node_id = context.current().node_id
    with (Path(log) / str(node_id)).open("a") as f:
        f.write("done\n")


@node(plugin="durable_t", cheap=False, cache=False)
def slow_inc(x: int, *, log: str, seconds: float = 0.0) -> int:
    """Sleeps `seconds`, counts the execution, returns x + 1."""
    time.sleep(seconds)
    _count(log)
    return x + 1


@node(plugin="durable_t", cache=False)
def add2(a: int, b: int, *, log: str) -> int:
    """a + b, counted."""
    _count(log)
    return a + b


@node(
    plugin="durable_t",
    cache=False,
    retries={"max_attempts": 3, "backoff": "fixed", "initial_s": 0.01, "jitter": False},
)
def flaky_inc(x: int, *, log: str, failures: int = 1) -> int:
    """Fails `failures` times (counted in `<log>/<node>.tries`), then returns x + 1 (counted)."""
    tries = Path(log) / f"{context.current().node_id}.tries"
    count = int(tries.read_text()) if tries.exists() else 0
    tries.write_text(str(count + 1))
    if count < failures:
        raise ConnectionError(f"transient failure {count + 1}")
    _count(log)
    return x + 1


@node(plugin="durable_t")
def counted_square(x: int, *, log: str) -> int:
    """x * x, counted; cacheable, so a rerun with the same input may take it from the result cache."""
    _count(log)
    return x * x


@node(plugin="durable_t", deterministic=False)
def reading(x: int, *, log: str) -> int:
    """Stands for a reading of the outside world (not deterministic, so never cached): here x, counted."""
    _count(log)
    return x


@node(plugin="durable_t", cache=False)
def unstorable(*, kind: str) -> Any:
    """A value the JSON of the store cannot hold, inside a list: `nul`, `surrogate`, `deep` (100 levels of
    lists) or `nan`."""
    value: Any = {"nul": "a\x00b", "surrogate": "\ud800", "nan": float("nan")}.get(kind, 1)
    if kind == "deep":
        for _ in range(100):
            value = [value]
    return ["fine", value]


@node(plugin="durable_t", cache=False)
def noisy_failure(x: int) -> int:
    """Logs a line, then fails with a message: both hold a NUL character and lone surrogates."""
    context.current().logger.info("line \x00 with \udc00 in it")
    raise ValueError(f"bad \x00 value \ud800 ({x})")


def read_then_square(log: Path) -> Workflow:
    """r = reading(x), s = r * r: `s` has no key before the run, only one made from its input's content."""
    wf = Workflow("durable-read-square")
    r = wf.add("r", reading, x=wf.input("x", "Int"), params={"log": str(log)})
    wf.output("out", wf.add("s", counted_square, x=r, params={"log": str(log)}))
    return wf


def squares(log: Path) -> Workflow:
    """s1 = x * x, s2 = s1 * s1 (cacheable nodes). Output: s2 (= x ** 4)."""
    wf = Workflow("durable-squares")
    s1 = wf.add("s1", counted_square, x=wf.input("x", "Int"), params={"log": str(log)})
    wf.output("out", wf.add("s2", counted_square, x=s1, params={"log": str(log)}))
    return wf


def chain(log: Path, *, seconds: float = 0.0, slow: str = "b") -> Workflow:
    """a -> b -> c on input x, plus d = a + c; node `slow` sleeps `seconds`. Output: d (= 2x + 4)."""
    wf = Workflow("durable-chain")
    x = wf.input("x", "Int")
    a = wf.add("a", slow_inc, x=x, params={"log": str(log), "seconds": seconds if slow == "a" else 0.0})
    b = wf.add("b", slow_inc, x=a, params={"log": str(log), "seconds": seconds if slow == "b" else 0.0})
    c = wf.add("c", slow_inc, x=b, params={"log": str(log), "seconds": seconds if slow == "c" else 0.0})
    d = wf.add("d", add2, a=a, b=c, params={"log": str(log)})
    wf.output("out", d)
    return wf


def executions(log: Path) -> dict[str, int]:
    """How many times each node finished its body, by node id."""
    return {p.name: len(p.read_text().splitlines()) for p in Path(log).iterdir() if "." not in p.name}


@node(plugin="durable_t", cheap=False)
def counted_total(xs: list[Any], *, log: str) -> Any:
    """The sum of `xs`, counted; cacheable."""
    _count(log)
    return sum(xs)


@node(plugin="durable_t", cache=False)
def texts_with_nul() -> list[str]:
    """Two texts, the second holding a NUL character (which the JSON of the store cannot hold)."""
    return ["fine", "a\x00b"]


def square_doc() -> dict[str, Any]:
    """The sub-workflow of a map: `out` = item * item."""
    return {
        "format": "rayweave.workflow/1",
        "name": "square",
        "inputs": {"item": {"type": "Int"}},
        "nodes": {"sq": {"type": "builtin/multiply@1", "in": {"a": "$inputs.item", "b": "$inputs.item"}}},
        "outputs": {"out": "sq.out"},
    }


def map_then_total(log: Path) -> Workflow:
    """m = the squares of input `items` (a `builtin/map@1` node), t = their sum (counted). Outputs: `squares`
    (m's list) and `total` (t)."""
    wf = Workflow("durable-map-total")
    m = wf.add("m", "builtin/map@1", items=wf.input("items", "List[Int]"), params={"workflow": square_doc()})
    wf.output("squares", m)
    wf.output("total", wf.add("t", counted_total, xs=m, params={"log": str(log)}))
    return wf
