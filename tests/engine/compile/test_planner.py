"""Pass 6 alone and through compile_workflow: Ray options, policies, fused groups, order."""

from __future__ import annotations

from typing import Any

import pytest

from engine.compile import FUSED_TYPE_ID, NodeRef, compile_workflow
from engine.errors import WorkflowValidationError
from tests.engine.compile.nodes_for_tests import doc


def test_ray_options_retry_and_timeout(catalog: Any) -> None:
    d = doc(
        {
            "a": {
                "type": "t/retried@1",
                "in": {"x": {"value": 1}},
                "retry": {"backoff": "exponential"},
                "timeout_s": 2.5,
                "resources": {"num_cpus": 2, "custom": {"accel": 1}},
                "cache": False,
            }
        },
        {"o": "a.out"},
    )
    plan = compile_workflow(d, catalog, optimize=False)
    [node] = plan.nodes
    # Made by nodes.ray_options.task_options: no runtime env for a local node, no Ray retries of exceptions.
    assert node.ray_options == {
        "name": "wf/a:t/retried@1",
        "num_cpus": 2,
        "resources": {"accel": 1},
        "retry_exceptions": False,
    }
    # The document overrides only the backoff; the node type's 3 attempts stay.
    assert (node.retry.max_attempts, node.retry.backoff) == (3, "exponential")
    assert node.timeout_s == 2.5 and node.cache is False and node.outputs == ("out",)


def test_outputs_list_only_ports_that_are_read(catalog: Any) -> None:
    d = doc(
        {
            "s": {"type": "t/split@1", "in": {"x": {"value": 1}}},
            "b": {"type": "t/slow@1", "in": {"x": "s.low"}},
        },
        {"o": "b.out"},
    )
    plan = compile_workflow(d, catalog, optimize=False)
    assert plan.node("s").outputs == ("low",)


def test_fused_group_shape(catalog: Any) -> None:
    d = doc(
        {
            "e": {"type": "t/slow@1", "in": {"x": "$inputs.n"}},
            "a": {"type": "t/inc@1", "in": {"x": "e.out"}},
            "b": {"type": "t/add@1", "in": {"a": "a.out", "b": "$inputs.n"}},
            "f": {"type": "t/slow@1", "in": {"x": "a.out"}},
        },
        {"b": "b.out", "f": "f.out"},
        {"n": {"type": "Int"}},
    )
    plan = compile_workflow(d, catalog)
    assert plan.node_ids() == ("e", "fused:a", "f")
    group = plan.node("fused:a")
    assert group.type_id == FUSED_TYPE_ID and group.definition is None and group.is_fused
    assert [m.id for m in group.members] == ["a", "b"]
    assert dict(group.inputs) == {"a.x": NodeRef("e", "out"), "b.b": plan.node("e").inputs["x"]}
    assert group.outputs == ("a.out", "b.out")
    assert group.members[1].inputs["a"] == NodeRef("a", "out")
    assert plan.node("f").inputs["x"] == NodeRef("fused:a", "a.out")
    assert plan.outputs["b"] == NodeRef("fused:a", "b.out")
    assert group.ray_options["name"] == f"wf/fused:a:{FUSED_TYPE_ID}"


def test_topological_order_holds_for_every_node(catalog: Any) -> None:
    nodes: dict[str, Any] = {}
    for i in range(30):
        kind = "t/slow@1" if i % 3 == 0 else "t/inc@1"
        nodes[f"n{i}"] = {"type": kind, "in": {"x": f"n{i // 2}.out" if i else {"value": 1}}}
    d = doc(nodes, {f"o{i}": f"n{i}.out" for i in range(15, 30)})
    for optimize in (False, True):
        plan = compile_workflow(d, catalog, optimize=optimize)
        seen: set[str] = set()
        for node in plan.nodes:
            assert set(node.upstream()) <= seen, node.id
            seen.add(node.id)


def test_errors_raise_with_every_diagnostic(catalog: Any) -> None:
    d = doc({"a": {"type": "t/nope@1"}, "b": {"type": "t/inc@1"}}, {"o": "a.out"})
    with pytest.raises(WorkflowValidationError) as info:
        compile_workflow(d, catalog)
    assert isinstance(info.value, ValueError)
    assert [x.code for x in info.value.diagnostics] == ["RW101", "RW106", "RW201"]
    assert "RW101" in str(info.value) and "'wf'" in str(info.value)


def test_builder_workflows_with_local_nodes_compile(catalog: Any) -> None:
    from engine.workflow import Workflow
    from nodes import node

    @node(plugin="mine")
    def triple(x: int) -> int:
        """Three times x."""
        return 3 * x

    wf = Workflow("local")
    t = wf.add("t", triple, x=wf.input("n", "Int"))
    wf.output("o", t.out)
    plan = compile_workflow(wf, catalog)
    assert plan.node("t").definition is triple
    assert "mine/triple@1" not in catalog  # the caller's catalog is left alone


def test_outputs_option_prunes(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/slow@1", "in": {"x": {"value": 1}}},
            "b": {"type": "t/slow@1", "in": {"x": {"value": 2}}},
        },
        {"a": "a.out", "b": "b.out"},
    )
    plan = compile_workflow(d, catalog, outputs=["b"])
    assert plan.node_ids() == ("b",) and list(plan.outputs) == ["b"]
