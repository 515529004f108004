"""nodes.testing: run one node in-process with type checks, and on Ray with its real options."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from nodes import SKIP, context, node
from nodes.errors import NodeInputError, NodeOutputError, NodeTimeoutError
from nodes.testing import run_node, run_node_on_ray


@node
def scale(x: float, *, k: float = 2.0) -> float:
    """Scale x by k, logging what it does."""
    context.current().logger.info("scaling %s by %s", x, k)
    context.current().progress(1.0, "done")
    return x * k


class Parts(TypedDict):
    word: str
    rest: str


@node
def split_word(s: str) -> Parts:
    """First word and the rest."""
    word, _, rest = s.partition(" ")
    return {"word": word, "rest": rest}


@node
def liar(x: int) -> int:
    """Returns a string although it promises an Int."""
    return str(x)  # type: ignore[return-value]


def test_run_node_returns_outputs_and_events() -> None:
    result = run_node(scale, inputs={"x": 1.5}, params={"k": 4.0})
    assert result == {"out": 6.0} and result.value == 6.0
    assert result.logs == ["scaling 1.5 by 4.0"]
    assert result.progress == [1.0]
    assert not result.skipped


def test_run_node_accepts_a_plain_function() -> None:
    def double(x: int) -> int:
        return 2 * x

    assert run_node(double, inputs={"x": 21}).value == 42


def test_input_output_and_param_type_errors_name_node_and_port() -> None:
    with pytest.raises(
        NodeInputError, match=r"node 'scale' \(local/scale@1\), input port 'x': expected Float"
    ):
        run_node(scale, inputs={"x": "one"})
    with pytest.raises(NodeInputError, match=r"param 'k': expected Float"):
        run_node(scale, inputs={"x": 1.0}, params={"k": "big"})
    with pytest.raises(NodeInputError, match=r"no param\(s\) \['kk'\]"):
        run_node(scale, inputs={"x": 1.0}, params={"kk": 1.0})
    with pytest.raises(NodeInputError, match=r"required input port\(s\) \['x'\]"):
        run_node(scale, inputs={})
    with pytest.raises(
        NodeOutputError, match=r"local/liar@1\), output port 'out': expected Int, got str '3'"
    ):
        run_node(liar, inputs={"x": 3})
    assert run_node(liar, inputs={"x": 3}, check=False).value == "3"


def test_named_outputs_and_skip_rule() -> None:
    assert run_node(split_word, inputs={"s": "hello big world"}) == {"word": "hello", "rest": "big world"}
    skipped = run_node(split_word, inputs={"s": SKIP})
    assert skipped.skipped and skipped == {"word": SKIP, "rest": SKIP}


def test_generator_partial_outputs_are_recorded() -> None:
    @node
    def countdown(n: int) -> Iterator[int]:
        """n..1."""
        yield from range(n, 0, -1)

    result = run_node(countdown, inputs={"n": 3})
    assert result.value == 1 and result.partial_outputs == [3, 2, 1]


class Where(TypedDict):
    pid: int
    x: int


@node(resources={"num_cpus": 1})
def where(x: int) -> Where:
    """The worker process id, to prove the node ran elsewhere."""
    context.current().logger.info("on a worker")
    return {"pid": os.getpid(), "x": x}


@node(timeout_s=0.5)
def sleepy(x: int) -> int:
    """Sleeps longer than its timeout."""
    import time

    time.sleep(30)
    return x


@node
class Counter:
    """Counts its calls; setup() runs once per actor."""

    def setup(self) -> None:
        self.calls = 0

    def __call__(self, step: int) -> int:
        self.calls += step
        return self.calls


@pytest.mark.ray
def test_run_node_on_ray_uses_a_worker_and_keeps_checks(ray_session: Any) -> None:
    result = run_node_on_ray(where, inputs={"x": 7})
    assert result["x"] == 7 and result["pid"] != os.getpid()
    assert result.logs == ["on a worker"]
    with pytest.raises(NodeInputError, match="input port 'x'"):
        run_node_on_ray(where, inputs={"x": "seven"})
    with pytest.raises(NodeTimeoutError, match=r"did not finish within 0\.5 s"):
        run_node_on_ray(sleepy, inputs={"x": 1})
    assert run_node_on_ray(Counter, inputs={"step": 5}).value == 5
