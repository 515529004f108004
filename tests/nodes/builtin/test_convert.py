"""The conversion nodes agree with the typesys coercion rules the compiler uses."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typesys
from nodes.builtin import convert
from nodes.testing import run_node

REGISTRY = typesys.TypeRegistry.default()

NODES = {
    "to_int": convert.to_int,
    "to_float": convert.to_float,
    "to_string": convert.to_string,
    "parse_number": convert.parse_number,
    "to_bool": convert.to_bool,
    "table_to_records": convert.table_to_records,
    "records_to_table": convert.records_to_table,
}


@pytest.mark.parametrize("name", sorted(NODES))
def test_conversion_nodes_have_the_contract_shape(name: str) -> None:
    spec = NODES[name].spec
    assert spec.id == f"builtin/{name}@1"
    assert [p.name for p in spec.inputs] == ["value"]
    assert [p.name for p in spec.outputs] == ["out"]
    assert spec.category == "convert"


def test_every_explicit_builtin_coercion_names_an_existing_node_that_accepts_its_source() -> None:
    by_id = {d.spec.id: d for d in NODES.values()}
    for rule in REGISTRY.coercions():
        if rule.kind != "explicit":
            continue
        assert rule.node in by_id, f"coercion {rule.source} -> {rule.target} names missing node {rule.node}"
        spec = by_id[rule.node].spec
        assert typesys.is_assignable(rule.source, spec.input("value").type, REGISTRY), (
            rule.source,
            rule.node,
        )
        assert typesys.is_assignable(spec.output("out").type, rule.target, REGISTRY) or isinstance(
            rule.target, typesys.ListType | typesys.TableType
        ), (rule.node, spec.output("out").type, rule.target)


def _coerced(value: object, source: str, target: str) -> object:
    coercion = typesys.find_coercion(typesys.parse(source), typesys.parse(target), REGISTRY)
    assert coercion is not None
    return coercion.apply(value)


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_to_int_agrees_with_the_float_to_int_coercion(x: float) -> None:
    assert run_node(convert.to_int, {"value": x}).value == _coerced(x, "Float", "Int")


@settings(max_examples=60, deadline=None)
@given(st.integers(-(10**12), 10**12).map(str))
def test_to_int_agrees_on_integer_strings(text: str) -> None:
    assert run_node(convert.to_int, {"value": f" {text} "}).value == _coerced(f" {text} ", "String", "Int")


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False).map(repr))
def test_parse_number_agrees_with_the_string_to_float_coercion(text: str) -> None:
    assert run_node(convert.parse_number, {"value": text}).value == _coerced(text, "String", "Float")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), (" FALSE ", False), ("1", True), ("off", False), (0, False), (2.5, True)],
)
def test_to_bool(value: object, expected: bool) -> None:
    assert run_node(convert.to_bool, {"value": value}).value is expected


def test_to_float_and_to_string() -> None:
    assert run_node(convert.to_float, {"value": True}).value == 1.0
    assert run_node(convert.to_float, {"value": 3}).value == 3.0
    assert run_node(convert.to_string, {"value": 3.5}).value == "3.5"
    assert run_node(convert.to_string, {"value": "é".encode()}).value == "é"
    assert run_node(convert.to_string, {"value": [1, None]}).value == "[1, None]"


@pytest.mark.parametrize(
    ("node", "value", "message"),
    [
        (convert.to_int, "4.5x", r"builtin/to_int@1: input port 'value': cannot convert str '4.5x' to Int"),
        (convert.to_int, math.inf, "NaN and infinities"),
        (convert.parse_number, "abc", "builtin/parse_number@1: .* not a number"),
        (convert.to_bool, "maybe", "builtin/to_bool@1: .*true/false"),
        (convert.to_string, b"\xff", "not UTF-8"),
    ],
)
def test_conversion_failures_name_the_node_and_value(node: object, value: object, message: str) -> None:
    with pytest.raises(typesys.CoercionError, match=message):
        run_node(node, {"value": value})  # type: ignore[arg-type]


def test_table_records_round_trip() -> None:
    table = pa.table({"x": [1, 2], "name": ["a", None]})
    records = run_node(convert.table_to_records, {"value": table}).value
    assert records == [{"x": 1, "name": "a"}, {"x": 2, "name": None}]
    back = run_node(convert.records_to_table, {"value": records}).value
    assert back.equals(table)


def test_records_to_table_fills_missing_keys_with_null() -> None:
    table = run_node(convert.records_to_table, {"value": [{"a": 1}, {"b": "x"}]}).value
    assert table.to_pylist() == [{"a": 1, "b": None}, {"a": None, "b": "x"}]


def test_records_with_mixed_types_fail_clearly() -> None:
    with pytest.raises(typesys.CoercionError, match=r"builtin/records_to_table@1"):
        run_node(convert.records_to_table, {"value": [{"a": 1}, {"a": "x"}]})
