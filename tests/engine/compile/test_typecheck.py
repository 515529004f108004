"""Pass 3 alone: type variables, edges, implicit and explicit coercions, conversions, constants, params,
workflow inputs and map sub-workflows."""

from __future__ import annotations

from typing import Any

import typesys
from engine.compile.parse import parse
from engine.compile.resolve import resolve
from engine.compile.typecheck import typecheck, value_type
from engine.workflow.bindings import NodeRef
from tests.engine.compile.nodes_for_tests import doc


def run(catalog: Any, d: dict[str, Any], **options: Any) -> Any:
    parsed = parse(d)
    assert parsed.graph is not None
    resolved = resolve(parsed.graph, catalog)
    assert resolved.diagnostics == ()
    assert resolved.graph is not None
    return typecheck(resolved.graph, catalog, **options)


def test_type_variables_are_solved_per_node(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/first@1", "in": {"xs": {"value": ["x", "y"]}}},
            "b": {"type": "t/text@1", "in": {"s": "a.out"}},
            "c": {"type": "t/first@1", "in": {"xs": {"value": [1, 2]}}},
        },
        {"b": "b.out", "c": "c.out"},
    )
    result = run(catalog, d)
    assert result.diagnostics == ()
    assert result.graph.nodes["a"].output_types == {"out": typesys.STRING}
    assert result.graph.nodes["c"].output_types == {"out": typesys.INT}
    assert result.graph.nodes["a"].input_types == {"xs": typesys.ListType(typesys.STRING)}


def test_conflicting_type_variable_is_rw104(catalog: Any) -> None:
    d = doc({"a": {"type": "t/pair@1", "in": {"a": {"value": 1}, "b": {"value": "x"}}}}, {"o": "a.out"})
    result = run(catalog, d)
    assert [d.code for d in result.diagnostics] == ["RW104"]
    assert "Int" in result.diagnostics[0].message and "String" in result.diagnostics[0].message


def test_implicit_coercion_is_recorded_on_the_port(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": 1}}},
            "b": {"type": "t/half@1", "in": {"x": "a.out"}},
        },
        {"o": "b.out"},
    )
    result = run(catalog, d)
    assert result.diagnostics == ()
    coercion = result.graph.nodes["b"].coercions["x"]
    assert coercion.kind == "implicit" and coercion.apply(3) == 3.0 and isinstance(coercion.apply(3), float)


def test_explicit_coercion_is_rw103_naming_the_conversion_node(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/half@1", "in": {"x": {"value": 1.0}}},
            "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
        },
        {"o": "b.out"},
    )
    result = run(catalog, d)
    [diagnostic] = result.diagnostics
    assert (diagnostic.code, diagnostic.node, diagnostic.port) == ("RW103", "b", "x")
    assert "Float" in diagnostic.message and "builtin/to_int@1" in (diagnostic.hint or "")


def test_no_coercion_at_all_is_rw103(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/first@1", "in": {"xs": {"value": [[1]]}}},
            "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
        },
        {"o": "b.out"},
    )
    result = run(catalog, d)
    assert [d.code for d in result.diagnostics] == ["RW103"]


def _float_into_int(convert: bool | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "t/inc@1", "in": {"x": "a.out"}}
    if convert is not None:
        node["convert"] = convert
    return doc({"a": {"type": "t/half@1", "in": {"x": {"value": 3.0}}}, "b": node}, {"o": "b.out"})


def test_conversion_nodes_are_inserted_when_allowed(catalog: Any) -> None:
    result = run(catalog, _float_into_int(), insert_conversions=True)
    assert [(d.code, d.severity) for d in result.diagnostics] == [("RW203", "note")]
    assert list(result.graph.nodes) == ["a", "b__x__to_int", "b"]
    assert result.graph.nodes["b__x__to_int"].bindings == {"value": NodeRef("a", "out")}
    assert result.graph.nodes["b__x__to_int"].inserted
    assert result.graph.nodes["b"].bindings["x"] == NodeRef("b__x__to_int", "out")


def test_per_node_convert_flag_allows_and_forbids(catalog: Any) -> None:
    assert [d.code for d in run(catalog, _float_into_int(True)).diagnostics] == ["RW203"]
    assert [d.code for d in run(catalog, _float_into_int(False), insert_conversions=True).diagnostics] == [
        "RW103"
    ]


def test_constants_are_checked_and_may_coerce(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": {"value": "seven"}}},
            "b": {"type": "t/half@1", "in": {"x": {"value": 2}}},
        },
        {"a": "a.out", "b": "b.out"},
    )
    result = run(catalog, d)
    assert [(d.code, d.node, d.port) for d in result.diagnostics] == [("RW114", "a", "x")]
    assert "builtin/" in (result.diagnostics[0].hint or "")
    assert result.graph.nodes["b"].coercions["x"].kind == "implicit"


def test_param_values_are_checked(catalog: Any) -> None:
    d = doc(
        {"a": {"type": "t/scale@1", "in": {"x": {"value": 1}}, "params": {"factor": "two"}}}, {"o": "a.out"}
    )
    result = run(catalog, d)
    assert [(d.code, d.field) for d in result.diagnostics] == [("RW109", "nodes.a.params.factor")]


def test_workflow_inputs_are_typed_and_checked(catalog: Any) -> None:
    d = doc(
        {
            "a": {"type": "t/inc@1", "in": {"x": "$inputs.n"}},
            "b": {"type": "t/inc@1", "in": {"x": "$inputs.s"}},
        },
        {"a": "a.out", "b": "b.out"},
        {
            "n": {"type": "Int", "default": 2},
            "s": {"type": "String"},
            "bad": {"type": "Lst[Int]"},
            "d": {"type": "Int", "default": "x"},
        },
    )
    result = run(catalog, d)
    found = [(d.code, d.field) for d in result.diagnostics]
    assert ("RW115", "inputs.bad.type") in found and ("RW115", "inputs.d.default") in found
    assert ("RW103", "nodes.b.in.x") in found
    assert result.graph.inputs["n"].type == typesys.INT


SQUARE = {
    "format": "rayweave.workflow/1",
    "name": "inc-one",
    "inputs": {"item": {"type": "Int"}},
    "nodes": {"i": {"type": "t/inc@1", "in": {"x": "$inputs.item"}}},
    "outputs": {"out": "i.out"},
}


def test_map_compiles_its_sub_workflow_and_types_the_result(catalog: Any) -> None:
    from engine.compile.pipeline import compile_workflow

    d = doc(
        {
            "m": {
                "type": "builtin/map@1",
                "in": {"items": {"value": [1, 2]}},
                "params": {"workflow": SQUARE},
            },
            "t": {"type": "t/total@1", "in": {"xs": "m.out"}},
        },
        {"o": "t.out"},
    )
    plan = compile_workflow(d, catalog)
    mapped = plan.node("m")
    assert mapped.subplan is not None and mapped.subplan.node_ids() == ("i",)
    assert mapped.output_types["out"] == typesys.ListType(typesys.INT)


def test_map_records_the_implicit_coercion_of_its_items(catalog: Any) -> None:
    # Issue 16: a List[Int] mapped by a sub-workflow whose item is Float compiled, but nothing said how the
    # elements become Floats, so the engine passed 1 for 1.0.
    from engine.compile.maps import item_coercion_key
    from engine.compile.pipeline import compile_workflow

    floats = {
        **SQUARE,
        "inputs": {"item": {"type": "Float"}},
        "nodes": {},
        "outputs": {"out": "$inputs.item"},
    }
    d = doc(
        {"m": {"type": "builtin/map@1", "in": {"items": "$inputs.xs"}, "params": {"workflow": floats}}},
        {"o": "m.out"},
        {"xs": {"type": "List[Int]"}},
    )
    mapped = compile_workflow(d, catalog).node("m")
    coercion = mapped.coercions[item_coercion_key("items")]
    assert (coercion.source, coercion.target, coercion.kind) == (typesys.INT, typesys.FLOAT, "implicit")
    assert coercion.apply(1) == 1.0 and type(coercion.apply(1)) is float
    same = doc(
        {"m": {"type": "builtin/map@1", "in": {"items": "$inputs.xs"}, "params": {"workflow": floats}}},
        {"o": "m.out"},
        {"xs": {"type": "List[Float]"}},
    )
    assert item_coercion_key("items") not in compile_workflow(same, catalog).node("m").coercions


def test_bad_map_sub_workflow_is_rw116(catalog: Any) -> None:
    from engine.compile.pipeline import validate

    broken = {**SQUARE, "nodes": {"i": {"type": "t/nope@1", "in": {"x": "$inputs.item"}}}}
    no_item = {
        **SQUARE,
        "inputs": {"n": {"type": "Int"}},
        "nodes": {"i": {"type": "t/inc@1", "in": {"x": "$inputs.n"}}},
    }
    wrong_items = {
        "m": {"type": "builtin/map@1", "in": {"items": {"value": ["a"]}}, "params": {"workflow": SQUARE}}
    }
    for nodes in (
        {"m": {"type": "builtin/map@1", "in": {"items": {"value": [1]}}, "params": {"workflow": broken}}},
        {"m": {"type": "builtin/map@1", "in": {"items": {"value": [1]}}, "params": {"workflow": no_item}}},
        wrong_items,
    ):
        found = validate(doc(nodes, {"o": "m.out"}), catalog)
        assert "RW116" in [d.code for d in found], found


def test_value_type_of_constants() -> None:
    assert value_type([1, 2]) == typesys.ListType(typesys.INT)
    assert value_type([1, "a"]) == typesys.ListType(typesys.union(typesys.INT, typesys.STRING))
    assert value_type({"a": 1.5}) == typesys.DictType(typesys.STRING, typesys.FLOAT)
    assert value_type(None) == typesys.NULL and value_type(True) == typesys.BOOL
