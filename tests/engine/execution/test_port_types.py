"""Values crossing ports at run time, on Ray and in-process: a map applies the implicit coercion of its items,
and every failed coercion or check at a port is the documented `PortTypeError` naming workflow, node, port,
expected and actual type (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.errors import PortTypeError
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.errors import NodeInputError, NodeOutputError
from nodes.states import NodeStatus, RunStatus
from nodes.testing import run_node
from tests.engine.execution import sample_nodes as s


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> Any:
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        return RayExecutor()
    return "local"


def run(wf: Workflow, inputs: dict[str, Any] | None, settings: Settings, executor: Any) -> Any:
    return engine.run(wf, inputs, settings=settings, executor=executor, cache=False)


def float_items(list_type: str) -> Workflow:
    """A map of a `list_type` input through a sub-workflow whose `item` is Float: its `out` is the item as
    received, its `shown` the item as a String."""
    sub = {
        "format": "rayweave.workflow/1",
        "name": "as_float",
        "inputs": {"item": {"type": "Float"}},
        "nodes": {"show": {"type": "builtin/to_string@1", "in": {"value": "$inputs.item"}}},
        "outputs": {"out": "$inputs.item", "shown": "show.out"},
    }
    shown = {**sub, "outputs": {"out": "show.out"}}
    wf = Workflow("floats")
    xs = wf.input("xs", list_type)
    wf.output("items", wf.add("m", "builtin/map@1", items=xs, params={"workflow": sub}))
    wf.output("shown", wf.add("shown", "builtin/map@1", items=xs, params={"workflow": shown}))
    return wf


def test_a_map_applies_the_implicit_coercion_to_each_item(settings: Settings, executor: Any) -> None:
    result = run(float_items("List[Int]"), {"xs": [1, 2, 3]}, settings, executor)
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert result.outputs["items"] == [1.0, 2.0, 3.0]
    assert [type(v) for v in result.outputs["items"]] == [float, float, float]
    assert result.outputs["shown"] == ["1.0", "2.0", "3.0"]  # the nodes inside saw Floats too


def test_a_map_item_the_coercion_cannot_convert_is_a_port_type_error(
    settings: Settings, executor: Any
) -> None:
    result = run(float_items("List[Any]"), {"xs": [1.5, "x"]}, settings, executor)
    assert result.status is RunStatus.FAILED
    node = result.nodes["m"]
    assert node.status is NodeStatus.FAILED and node.error is not None
    assert node.error.type == "PortTypeError"
    message = node.error.message
    for part in ("workflow 'floats'", "node 'm' (builtin/map@1)", "input port 'items'", "[1]"):
        assert part in message, message
    assert "expected Float, got str 'x'" in message
    assert not any(key.startswith("m[") for key in result.nodes)  # no element ran


def test_a_failed_implicit_coercion_at_a_port_is_a_port_type_error(settings: Settings, executor: Any) -> None:
    wf = Workflow("untyped")
    untyped = wf.add("a", s.anything, x=1, params={"text": "seven"})
    wf.output("out", wf.add("d", s.double, x=untyped))
    result = run(wf, None, settings, executor)
    error = result.nodes["d"].error
    assert error is not None and error.type == "PortTypeError", error
    assert error.message.startswith("workflow 'untyped', node 'd' (t/double@1), input port 'x': ")
    assert "expected Int, got str 'seven'" in error.message
    assert "implicit coercion from Any to Int failed" in error.message


def test_a_list_element_that_cannot_be_coerced_names_the_port_and_element(
    settings: Settings, executor: Any
) -> None:
    wf = Workflow("elements")
    untyped = wf.add("a", s.anything, x=1, params={"text": "seven"})
    wf.output("out", wf.add("t", s.total, xs=[2, untyped]))
    result = run(wf, None, settings, executor)
    node = result.nodes["t"]
    assert node.status is NodeStatus.FAILED and node.attempts == 1
    assert node.error is not None and node.error.type == "PortTypeError"
    assert (
        "workflow 'elements', node 't' (t/total@1), input port 'xs': [1]: expected Int, got str 'seven'"
        in (node.error.message)
    )


def test_an_output_of_the_wrong_type_is_a_port_type_error(settings: Settings, executor: Any) -> None:
    wf = Workflow("liar")
    wf.output("out", wf.add("w", s.wrong_type, x=1))
    error = run(wf, None, settings, executor).nodes["w"].error
    assert error is not None and error.type == "PortTypeError"
    assert error.message.startswith(
        "workflow 'liar', node 'w' (t/wrong_type@1), output port 'out': expected Int"
    )


def test_the_node_test_harness_raises_the_same_port_type_error() -> None:
    with pytest.raises(PortTypeError) as caught:
        run_node(s.double, inputs={"x": "one"})
    error = caught.value
    assert isinstance(error, NodeInputError)  # what the harness raised before: callers catching it still do
    assert (error.node_type, error.port, error.direction) == ("t/double@1", "x", "input")
    assert (error.expected, error.actual) == ("Int", "str 'one'")
    with pytest.raises(PortTypeError) as output:
        run_node(s.wrong_type, inputs={"x": 1})
    assert isinstance(output.value, NodeOutputError) and output.value.direction == "output"


def test_a_port_type_error_survives_pickling() -> None:
    import pickle

    error = PortTypeError(
        "w", "n", "x", "input", "Int", "str 'a'", "[0]", node_type="t/n@1", port_type="List[Int]"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is PortTypeError and str(copy) == str(error)
    assert (copy.path, copy.node_type, copy.port_type) == ("[0]", "t/n@1", "List[Int]")
