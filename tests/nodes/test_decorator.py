"""`@node`: ports, params and outputs from the signature; options; decoration-time errors; invoke()."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple, NotRequired, TypedDict

import pydantic
import pytest

from nodes import SKIP, NodeDefinition, Resources, RetryPolicy, context, node
from nodes.context import NodeContext
from nodes.errors import NodeDefinitionError, NodeInputError, NodeOutputError


@node(category="math", tags=["arith"], retries=2, timeout_s=5, resources={"num_cpus": 2})
def add(a: int, b: int = 1, *, scale: int = 1) -> int:
    """Add two integers and scale the sum.

    Args:
        a: the first term.
        b: the second term.
        scale: multiplies the sum.

    Returns:
        the scaled sum.
    """
    return (a + b) * scale


class Stats(TypedDict):
    mean: float
    count: int
    note: NotRequired[str]


@node
def stats(xs: list[float]) -> Stats:
    """Mean and count of a list."""
    return {"mean": sum(xs) / len(xs), "count": len(xs)}


class MinMax(NamedTuple):
    lo: float
    hi: float


@node
def minmax(xs: list[float]) -> MinMax:
    """Smallest and largest element."""
    return MinMax(min(xs), max(xs))


@dataclasses.dataclass
class Split:
    head: str
    tail: str | None


@node(name="split_first", plugin="text", version="2.1.0")
def split_first(s: str, sep: str | None) -> Split:
    """Split at the first separator."""
    head, _, tail = s.partition(sep or " ")
    return Split(head, tail or None)


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(description="full name")
    age: int


@node
def parse_person(text: str) -> Person:
    """Parse 'name,age'."""
    name, age = text.split(",")
    return Person(name=name, age=int(age))


def test_spec_from_signature_and_docstring() -> None:
    spec = add.spec
    assert spec.id == "local/add@1" and spec.version == "1.0.0" and spec.major == 1
    assert spec.description == "Add two integers and scale the sum."
    assert [(p.name, str(p.type), p.required, p.default) for p in spec.inputs] == [
        ("a", "Int", True, None),
        ("b", "Int", False, 1),
    ]
    assert [(p.name, str(p.type), p.required, p.default) for p in spec.params] == [("scale", "Int", False, 1)]
    assert [(p.name, str(p.type)) for p in spec.outputs] == [("out", "Int")]
    assert spec.inputs[0].description == "the first term."
    assert spec.params[0].description == "multiplies the sum."
    assert spec.outputs[0].description == "the scaled sum."
    assert spec.retry == RetryPolicy(max_attempts=3)
    assert spec.timeout_s == 5.0 and spec.resources == Resources(num_cpus=2)
    assert spec.category == "math" and spec.tags == ("arith",) and spec.kind == "function"


def test_definition_stays_callable_like_the_function() -> None:
    assert isinstance(add, NodeDefinition)
    assert add(2, 3, scale=2) == 10
    assert add.__name__ == "add" and "scale the sum" in (add.__doc__ or "")


def test_invoke_by_name_with_defaults() -> None:
    assert add.invoke({"a": 2}, {}) == {"out": 3}
    assert add.invoke({"a": 2, "b": 5}, {"scale": 3}) == {"out": 21}


def test_invoke_errors_name_node_and_port() -> None:
    with pytest.raises(NodeInputError, match=r"local/add@1.*required input port 'a'"):
        add.invoke({}, {})
    with pytest.raises(NodeInputError, match=r"no input port\(s\) \['c'\]"):
        add.invoke({"a": 1, "c": 2}, {})
    with pytest.raises(NodeInputError, match=r"no param\(s\) \['scal'\]"):
        add.invoke({"a": 1}, {"scal": 2})


def test_typeddict_namedtuple_dataclass_and_pydantic_outputs_split_into_ports() -> None:
    assert stats.spec.output_names == ["mean", "count", "note"]
    assert str(stats.spec.output("note").type) in ("String | Null", "Null | String")
    assert stats.invoke({"xs": [1.0, 3.0]}, {}) == {"mean": 2.0, "count": 2, "note": None}
    assert minmax.spec.output_names == ["lo", "hi"]
    assert minmax.invoke({"xs": [3.0, 1.0, 2.0]}, {}) == {"lo": 1.0, "hi": 3.0}
    assert split_first.spec.id == "text/split_first@2"
    assert split_first.invoke({"s": "a b c", "sep": None}, {}) == {"head": "a", "tail": "b c"}
    assert [p.name for p in parse_person.spec.outputs] == ["name", "age"]
    assert parse_person.spec.output("name").description == "full name"
    assert parse_person.invoke({"text": "Ada,36"}, {}) == {"name": "Ada", "age": 36}


def test_optional_port_without_default_is_not_required() -> None:
    sep = split_first.spec.input("sep")
    assert not sep.required and sep.default is None


def test_returning_skip_skips_every_output() -> None:
    @node
    def maybe(x: int) -> MinMax:
        """Skip on negative input."""
        return SKIP if x < 0 else MinMax(x, x)  # type: ignore[return-value]

    assert maybe.invoke({"x": -1}, {}) == {"lo": SKIP, "hi": SKIP}


def test_named_outputs_missing_a_key_is_an_output_error() -> None:
    @node
    def bad(x: int) -> Stats:
        """Forgets a key."""
        return {"mean": 1.0}  # type: ignore[typeddict-item]

    with pytest.raises(NodeOutputError, match=r"no value for output port 'count'"):
        bad.invoke({"x": 1}, {})


def test_generator_node_streams_partial_outputs_and_returns_the_last() -> None:
    @node
    def count_up(n: int) -> Iterator[int]:
        """Yield 1..n."""
        yield from range(1, n + 1)

    assert count_up.spec.kind == "generator" and str(count_up.spec.outputs[0].type) == "Int"
    seen: list[Any] = []
    with context.use(NodeContext(emit=lambda kind, payload: seen.append((kind, payload["value"])))):
        assert count_up.invoke({"n": 3}, {}) == {"out": 3}
    assert seen == [("node.output", 1), ("node.output", 2), ("node.output", 3)]
    with pytest.raises(NodeOutputError, match="yielded nothing"):
        count_up.invoke({"n": 0}, {})


def test_async_and_async_generator_nodes() -> None:
    @node
    async def slow_double(x: int) -> int:
        """Double after a pause."""
        await asyncio.sleep(0)
        return 2 * x

    @node
    async def ticks(n: int) -> AsyncIterator[str]:
        """Yield tick labels."""
        for i in range(n):
            yield f"t{i}"

    assert slow_double.spec.kind == "async" and slow_double.invoke({"x": 4}, {}) == {"out": 8}
    assert ticks.spec.kind == "async_generator" and ticks.invoke({"n": 2}, {}) == {"out": "t1"}

    async def inside_a_loop() -> dict[str, Any]:
        return slow_double.invoke({"x": 5}, {})

    assert asyncio.run(inside_a_loop()) == {"out": 10}


def test_class_node_sets_up_once_per_instance() -> None:
    class Scaler:
        """Multiply by a factor loaded once."""

        setups = 0

        def setup(self) -> None:
            type(self).setups += 1
            self.factor = 10

        def __call__(self, x: float, *, offset: float = 0.0) -> float:
            return x * self.factor + offset

    # The call form rather than `@node` on the class: mypy does not apply class decorators' return types.
    scaler = node(category="ml")(Scaler)

    assert scaler.spec.kind == "class" and scaler.spec.input_names == ["x"]
    assert [p.name for p in scaler.spec.params] == ["offset"]
    instance = scaler.new_instance()
    for i in range(3):
        assert scaler.invoke({"x": float(i)}, {"offset": 1.0}, instance=instance) == {"out": i * 10 + 1.0}
    assert Scaler.setups == 1
    assert scaler.invoke({"x": 1.0}, {}) == {"out": 10.0}  # no instance given: a fresh one
    assert Scaler.setups == 2


def test_node_without_outputs() -> None:
    @node
    def sink(x: int) -> None:
        """Discard."""

    assert sink.spec.outputs == () and sink.invoke({"x": 1}, {}) == {}


def test_receives_skip_and_accepts_skipped() -> None:
    @node(accepts_skipped=True)
    def first_present(a: Any, b: Any) -> Any:
        """The first non-skipped input."""
        return b if a is SKIP else a

    assert add.receives_skip({"a": SKIP}) and not add.receives_skip({"a": 1})
    assert not first_present.receives_skip({"a": SKIP, "b": 1})
    assert add.skipped_outputs() == {"out": SKIP}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(a) -> int:\n    return 1", r"node .*f, parameter 'a' has no type annotation; annotate it"),
        ("def f(a: int):\n    return 1", r"node .*f has no return annotation; annotate it"),
        ("def f(*xs: int) -> int:\n    return 1", r"parameter 'xs': \*args/\*\*kwargs cannot become ports"),
        ("def f(a: int, *, k) -> int:\n    return 1", r"parameter 'k' has no type annotation.*params"),
        ("def f(a: int) -> Iterator[int]:\n    yield a\n", None),
        ("def f(a: int) -> int:\n    yield a\n", r"is a generator; annotate its return as Iterator\[T\]"),
        (
            "def f(a: complex) -> int:\n    return 1",
            r"parameter 'a': the annotation .*complex.* has no port type",
        ),
    ],
)
def test_decoration_errors_name_function_parameter_and_fix(source: str, message: str | None) -> None:
    namespace: dict[str, Any] = {"Iterator": Iterator}
    exec(source, namespace)
    if message is None:
        node(namespace["f"])
        return
    with pytest.raises(NodeDefinitionError, match=message):
        node(namespace["f"])


def test_option_errors() -> None:
    def f(a: int) -> int:
        """Id."""
        return a

    with pytest.raises(NodeDefinitionError, match="not a semantic version"):
        node(version="1.0")(f)
    with pytest.raises(NodeDefinitionError, match="name 'bad name' is not valid"):
        node("bad name")(f)
    with pytest.raises(NodeDefinitionError, match="retries must be >= 0"):
        node(retries=-2)(f)
    with pytest.raises(NodeDefinitionError, match="timeout_s must be > 0"):
        node(timeout_s=0)(f)
    with pytest.raises(NodeDefinitionError, match="already a node"):
        node(add)
    with pytest.raises(NodeDefinitionError, match="wrap other callables"):
        node(functools.partial(f, 1))
    with pytest.raises(NodeDefinitionError, match="no __call__"):

        @node
        class NoCall:
            """Nothing to call."""

            def setup(self) -> None:
                pass


def test_definitions_pickle_by_reference_when_importable_and_by_value_otherwise() -> None:
    import pickle

    import ray.cloudpickle as cloudpickle

    assert pickle.loads(pickle.dumps(add)) is add
    assert cloudpickle.loads(cloudpickle.dumps(add)) is add  # type: ignore[no-untyped-call]
    assert len(pickle.dumps(add)) < 200

    @node
    def local_double(x: int) -> int:
        """Defined inside a function: not importable, so it travels by value."""
        return 2 * x

    copy = cloudpickle.loads(cloudpickle.dumps(local_double))  # type: ignore[no-untyped-call]
    assert copy is not local_double and copy.spec == local_double.spec
    assert copy.invoke({"x": 4}, {}) == {"out": 8}
