"""List bindings (ADR 005) in the document, the builder and the compiler: a list port bound element by element."""

from __future__ import annotations

from typing import Any

import pytest

from engine.compile import compile_workflow
from engine.compile.pipeline import validate
from engine.errors import WorkflowLoadError
from engine.workflow import ListReference, Workflow, load_workflow_text
from engine.workflow.bindings import Const, InputRef, ListBinding, NodeRef
from tests.engine.compile.nodes_for_tests import doc, inc, total


def fan_in_doc(items: list[Any], port_type: str = "t/total@1") -> dict[str, Any]:
    return doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "b": {"type": "t/inc@1", "in": {"x": {"value": 2}}},
            "s": {"type": port_type, "in": {"xs": items}},
        },
        {"out": "s.out"},
        {"n": {"type": "Int"}},
    )


def codes(catalog: Any, d: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(x.code, x.node, x.port) for x in validate(d, catalog=catalog) if x.severity == "error"]


def test_document_round_trips_a_list_binding() -> None:
    import json

    d = fan_in_doc(["a.out", "b", "$inputs.n", {"value": 7}])
    loaded = load_workflow_text(json.dumps(d), "json")
    binding = loaded.nodes["s"].in_["xs"]
    assert isinstance(binding, ListReference)
    assert [str(item) for item in binding.items] == ["a.out", "b", "$inputs.n", "{value: 7}"]
    assert loaded.to_data()["nodes"]["s"]["in"]["xs"] == ["a.out", "b", "$inputs.n", {"value": 7}]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], 'bind an empty list constant as {"value": []}'),
        (["a.out", ["b.out"]], "item 1 of a list binding is itself a list"),
        (["a.out", "not a ref!"], "item 1 of the list: 'not a ref!' is not a reference"),
        (["a.out", {"values": 1}], "item 1 of the list: a constant is written"),
    ],
)
def test_malformed_list_bindings_are_load_errors_naming_the_item(items: list[Any], message: str) -> None:
    import json

    with pytest.raises(WorkflowLoadError) as info:
        load_workflow_text(json.dumps(fan_in_doc(items)), "json")
    assert message in str(info.value)
    assert "nodes.s.in.xs" in str(info.value) or "s" in str(info.value)


def test_builder_binds_a_list_of_handles_element_by_element() -> None:
    wf = Workflow("fan")
    n = wf.input("n", "Int")
    a = wf.add("a", inc, x=1)
    wf.output("out", wf.add("s", total, xs=[a, n, 3]))
    assert wf.to_data()["nodes"]["s"]["in"]["xs"] == ["a", "$inputs.n", {"value": 3}]
    # A list without handles is one constant, as before.
    wf2 = Workflow("const")
    wf2.output("out", wf2.add("s", total, xs=[1, 2]))
    assert wf2.to_data()["nodes"]["s"]["in"]["xs"] == {"value": [1, 2]}


def test_compiled_plan_keeps_the_elements_and_their_edges(catalog: Any) -> None:
    plan = compile_workflow(
        fan_in_doc(["a", "b.out", "$inputs.n", {"value": 7}]), catalog=catalog, optimize=False
    )
    s = next(p for p in plan.nodes if p.id == "s")
    assert s.inputs["xs"] == ListBinding(
        (NodeRef("a", "out"), NodeRef("b", "out"), InputRef("n"), Const(7))
    )  # a node alone was resolved to its single output port
    assert s.upstream() == ("a", "b")
    assert plan.downstream()["a"] == ("s",)


def test_element_type_mismatch_names_the_element(catalog: Any) -> None:
    d = fan_in_doc(["a", {"value": "seven"}])
    found = validate(d, catalog=catalog)
    errors = [x for x in found if x.severity == "error"]
    assert [(x.code, x.node, x.port) for x in errors] == [("RW114", "s", "xs")]
    assert "element 'xs[1]' of input 'xs'" in errors[0].message


def test_upstream_element_of_the_wrong_type_is_rw103(catalog: Any) -> None:
    d = doc(
        {
            "t": {"type": "t/text@1", "in": {"s": {"value": "x"}}},
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "s": {"type": "t/total@1", "in": {"xs": ["a", "t"]}},
        },
        {"out": "s.out"},
    )
    found = [x for x in validate(d, catalog=catalog) if x.severity == "error"]
    assert [(x.code, x.node, x.port) for x in found] == [("RW103", "s", "xs")]
    assert "element 'xs[1]'" in found[0].message and "String" in found[0].message


def test_list_bound_to_a_port_that_takes_no_list_is_rw103(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "b": {"type": "t/inc@1", "in": {"x": ["a"]}},
        },
        {"out": "b.out"},
    )
    found = [x for x in validate(d, catalog=catalog) if x.severity == "error"]
    assert [(x.code, x.node, x.port) for x in found] == [("RW103", "b", "x")]
    assert "a list of references binds only a List port" in found[0].message


def test_unknown_node_or_input_in_a_list_is_reported(catalog: Any) -> None:
    assert codes(catalog, fan_in_doc(["a", "nope.out"])) == [("RW111", "s", "xs")]
    assert codes(catalog, fan_in_doc(["a", "$inputs.missing"])) == [("RW112", "s", "xs")]


def test_type_variables_are_solved_from_the_elements(catalog: Any) -> None:
    import typesys

    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "f": {"type": "t/first@1", "in": {"xs": ["a", {"value": 2}]}},
        },
        {"out": "f.out"},
    )
    plan = compile_workflow(d, catalog=catalog, optimize=False)
    assert plan.output_types["out"] == typesys.INT


def test_dedup_sees_list_bindings(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "s1": {"type": "t/total@1", "in": {"xs": ["a", {"value": 2}]}},
            "s2": {"type": "t/total@1", "in": {"xs": ["a", {"value": 2}]}},
            "s3": {"type": "t/total@1", "in": {"xs": [{"value": 2}, "a"]}},
        },
        {"one": "s1.out", "two": "s2.out", "three": "s3.out"},
    )
    plan = compile_workflow(d, catalog=catalog, optimize=True)
    assert plan.aliases == {"s2": "s1"}  # the order of elements matters: s3 is another list
