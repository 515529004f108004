"""List bindings (ADR 005) when running: values in order, failure and skip rules, coercions, maps, fusion;
in-process and on Ray."""

from __future__ import annotations

from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.compile import compile_workflow
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.states import NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s
from tests.engine.execution.test_inprocess import square_doc


def fan_in() -> Workflow:
    wf = Workflow("fan_in")
    n = wf.input("n", "Int")
    doubles = [wf.add(f"d{i}", s.double, x=i) for i in range(5)]
    wf.output("out", wf.add("t", s.total, xs=[*doubles, n, 100]))
    return wf


def run(wf: Workflow, inputs: dict[str, Any] | None, settings: Settings, executor: Any, **kw: Any) -> Any:
    return engine.run(wf, inputs, settings=settings, executor=executor, cache=False, **kw)


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> Any:
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        return RayExecutor()
    return "local"


def test_elements_arrive_in_order(settings: Settings, executor: Any) -> None:
    result = run(fan_in(), {"n": 7}, settings, executor)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"out": 0 + 2 + 4 + 6 + 8 + 7 + 100}


def test_a_failed_element_fails_the_node_naming_it(settings: Settings, executor: Any) -> None:
    wf = Workflow("fan_fail")
    ok = wf.add("ok", s.double, x=1)
    bad = wf.add("bad", s.boom, x=1)
    wf.output("out", wf.add("t", s.total, xs=[ok, bad]))
    result = run(wf, None, settings, executor)
    assert result.status is RunStatus.FAILED
    assert result.nodes["ok"].status is NodeStatus.SUCCEEDED
    assert result.nodes["t"].status is NodeStatus.FAILED
    assert "bad" in result.nodes["t"].error.message


def test_a_skipped_element_skips_the_node_unless_it_accepts_skipped(
    settings: Settings, executor: Any
) -> None:
    wf = Workflow("fan_skip")
    a = wf.add("a", s.double, x=1)
    closed = wf.add("closed", "builtin/gate@1", value=a, open=False)
    wf.output("total", wf.add("t", s.total, xs=[a, closed]))
    wf.output("present", wf.add("p", s.present, xs=[a, closed, 5]))
    result = run(wf, None, settings, executor)
    assert result.nodes["t"].status is NodeStatus.SKIPPED
    assert result.nodes["p"].status is NodeStatus.SUCCEEDED
    assert result.outputs["present"] == 2  # the skipped element is left out


def test_elements_get_implicit_coercions(settings: Settings, executor: Any) -> None:
    wf = Workflow("coerce")
    a = wf.add("a", s.double, x=1)  # Int into a List[Float] port: Int -> Float per element
    wf.output("out", wf.add("m", s.mean, xs=[a, 4]))
    result = run(wf, None, settings, executor)
    assert result.outputs == {"out": 3.0}
    assert isinstance(result.outputs["out"], float)


def test_map_over_a_list_binding(settings: Settings, executor: Any) -> None:
    wf = Workflow("map_list")
    a = wf.add("a", s.double, x=1)
    b = wf.add("b", s.double, x=2)
    wf.output("out", wf.add("m", "builtin/map@1", items=[a, b, 5], params={"workflow": square_doc()}))
    result = run(wf, None, settings, executor)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"out": [4, 16, 25]}


def test_fused_groups_mix_member_and_outside_elements(settings: Settings, executor: Any) -> None:
    from bench.engine_bench import tiny, total

    wf = Workflow("mixed")
    ts = [wf.add(f"t{i}", tiny, i=i) for i in range(4)]
    inner = wf.add("inner", total, xs=[ts[0], ts[1], 5])
    wf.output("out", wf.add("outer", total, xs=[inner, ts[2], ts[3], wf.input("x", "Int")]))
    fused = compile_workflow(wf, optimize=True)
    assert len(fused.nodes) == 1 and fused.nodes[0].is_fused
    for plan in (fused, compile_workflow(wf, optimize=False)):
        result = engine.run(plan, {"x": 10}, settings=settings, executor=executor, cache=False)
        assert result.outputs == {"out": (1 + 2 + 5) + 3 + 4 + 10}
