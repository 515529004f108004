"""Coercions: the built-in rules, cheapest-path search, structural coercions, and what `apply` produces."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

from typesys import (
    BYTES,
    CoercionError,
    TypeRegistry,
    check,
    find_coercion,
    parse,
)


@pytest.fixture(scope="module")
def registry() -> TypeRegistry:
    return TypeRegistry.default()


def coerce(source: str, target: str, registry: TypeRegistry):  # type: ignore[no-untyped-def]
    return find_coercion(parse(source, registry), parse(target, registry), registry)


@pytest.mark.parametrize(
    ("source", "target"),
    [("Int", "Int | Null"), ("Int", "Int | String"), ("{a: Int, b: Int}", "{a: Int}"), ("Int", "Number")],
)
def test_subtypes_need_no_conversion(source: str, target: str, registry: TypeRegistry) -> None:
    c = coerce(source, target, registry)
    assert c is not None and c.kind == "identity" and c.cost == 0 and c.steps == ()
    assert c.apply(3) == 3


@pytest.mark.parametrize(
    ("source", "target", "value", "expected"),
    [
        ("Int", "Float", 3, 3.0),
        ("List[Int]", "List[Float]", [1, 2], [1.0, 2.0]),
        ("Int | Null", "Float | Null", 2, 2.0),
        ("Int | Null", "Float | Null", None, None),
        ("Int", "Float | String", 1, 1.0),
        ("Dict[String, Int]", "Dict[String, Float]", {"a": 1}, {"a": 1.0}),
        ("Tuple[Int, String]", "Tuple[Float, String]", (1, "x"), (1.0, "x")),
        ("Tuple[Int, Float]", "List[Float]", (1, 2.5), [1.0, 2.5]),
        ("{a: Int, b: String}", "{a: Float}", {"a": 1, "b": "x"}, {"a": 1.0, "b": "x"}),
        ("Number", "Float", 4, 4.0),
    ],
)
def test_implicit_coercions_convert_losslessly(
    source: str, target: str, value: object, expected: object, registry: TypeRegistry
) -> None:
    c = coerce(source, target, registry)
    assert c is not None and c.kind == "implicit"
    assert all(step.node is None for step in c.steps)
    out = c.apply(value)
    assert out == expected and type(out) is type(expected)
    check(out, parse(target), full=True)


@pytest.mark.parametrize(
    ("source", "target", "node", "value", "expected"),
    [
        ("Float", "Int", "builtin/to_int@1", 3.9, 3),
        ("String", "Int", "builtin/to_int@1", " 42 ", 42),
        ("Bool", "Int", "builtin/to_int@1", True, 1),
        ("String", "Float", "builtin/parse_number@1", "1e3", 1000.0),
        ("Int", "String", "builtin/to_string@1", 7, "7"),
        ("Bytes", "String", "builtin/to_string@1", b"caf\xc3\xa9", "café"),
        ("String", "Bool", "builtin/to_bool@1", "Yes", True),
        ("String", "Float | Null", "builtin/parse_number@1", "2.5", 2.5),
        ("String", "Number", "builtin/parse_number@1", "2.5", 2.5),
    ],
)
def test_explicit_coercions_name_their_conversion_node(
    source: str, target: str, node: str, value: object, expected: object, registry: TypeRegistry
) -> None:
    c = coerce(source, target, registry)
    assert c is not None and c.kind == "explicit"
    assert c.nodes == (node,)
    assert c.apply(value) == expected


def test_table_and_records_convert_both_ways(registry: TypeRegistry) -> None:
    to_rows = coerce("Table[x: Float, y: String]", "List[{x: Float}]", registry)
    assert to_rows is not None and to_rows.nodes == ("builtin/table_to_records@1",)
    table = pa.table({"x": [1.0, 2.0], "y": ["a", "b"]})
    assert to_rows.apply(table) == [{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}]
    to_table = coerce("List[{x: Float}]", "Table[x: Float]", registry)
    assert to_table is not None and to_table.nodes == ("builtin/records_to_table@1",)
    out = to_table.apply([{"x": 1.5}])
    check(out, parse("Table[x: Float]"))


def test_cheapest_path_prefers_implicit_over_explicit(registry: TypeRegistry) -> None:
    # String -> Int directly (one explicit step) beats String -> Float -> Int (two).
    c = coerce("String", "Int", registry)
    assert c is not None and len(c.steps) == 1
    # Int -> Float | String: the implicit Int -> Float wins over the explicit to_string.
    c = coerce("Int", "Float | String", registry)
    assert c is not None and c.kind == "implicit"


def test_chains_of_rules_are_found(registry: TypeRegistry) -> None:
    registry = registry.copy()
    registry.add_coercion(
        parse("Float"),
        parse("Money", registry) if registry.nominal("Money") else _money(registry),
        lambda v: round(v, 2),
        kind="explicit",
        cost=10,
        node="finance/to_money@1",
    )
    c = coerce("String", "Money", registry)
    assert c is not None and c.nodes == ("builtin/parse_number@1", "finance/to_money@1")
    assert c.apply("2.345") == 2.35


def _money(registry: TypeRegistry):  # type: ignore[no-untyped-def]
    return registry.register_type("Money", parse("Float"))


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("List[String]", "List[Int]"),
        ("Dict[String, Int]", "List[Int]"),
        ("Int | Null", "Int"),
        ("Model", "Int"),
        ("Bytes | Null", "Int"),
    ],
)
def test_no_coercion(source: str, target: str, registry: TypeRegistry) -> None:
    assert coerce(source, target, registry) is None


def test_any_reaches_typed_ports_through_a_runtime_check(registry: TypeRegistry) -> None:
    c = coerce("Any", "List[Int]", registry)
    assert c is not None and c.kind == "implicit" and c.steps[0].description == "runtime-checked"
    assert c.apply([1, 2]) == [1, 2]
    with pytest.raises(CoercionError, match=r"\[1\]: expected Int, got str 'x'"):
        c.apply([1, "x"])
    element_wise = coerce("List[Any]", "List[Int]", registry)
    assert element_wise is not None and element_wise.kind == "implicit"


def test_untyped_tables_and_dicts_are_runtime_checked(registry: TypeRegistry) -> None:
    c = coerce("Table", "Table[x: Float]", registry)
    assert c is not None and c.kind == "implicit"
    c.apply(pa.table({"x": [1.0]}))
    with pytest.raises(CoercionError, match="missing"):
        c.apply(pa.table({"y": [1.0]}))
    d = coerce("Dict[String, Any]", "{name: String}", registry)
    assert d is not None and d.kind == "implicit"
    assert d.apply({"name": "a"}) == {"name": "a"}


def test_failing_conversions_raise_coercion_error_naming_the_value(registry: TypeRegistry) -> None:
    c = coerce("String", "Int", registry)
    assert c is not None
    with pytest.raises(CoercionError, match="'abc'"):
        c.apply("abc")
    f = coerce("Float", "Int", registry)
    assert f is not None
    with pytest.raises(CoercionError, match="NaN"):
        f.apply(float("nan"))


def test_record_objects_are_coerced_field_by_field(registry: TypeRegistry) -> None:
    @dataclass
    class Point:
        x: int
        label: str

    c = coerce("{x: Int, label: String}", "{x: Float}", registry)
    assert c is not None
    assert c.apply(Point(1, "p")) == {"x": 1.0, "label": "p"}


def test_coercion_json_lists_steps(registry: TypeRegistry) -> None:
    c = coerce("String", "Int", registry)
    assert c is not None
    data = c.to_json()
    assert data["kind"] == "explicit" and data["steps"][0]["node"] == "builtin/to_int@1"


def test_plugin_rules_only_exist_in_their_registry() -> None:
    plain = TypeRegistry.default()
    custom = plain.copy()
    image = custom.register_type("Image", BYTES)
    custom.add_coercion(
        parse("String"), image, bytes.fromhex, kind="explicit", cost=10, node="img/from_hex@1"
    )
    c = find_coercion(parse("String"), image, custom)
    assert c is not None and c.apply("ff00") == b"\xff\x00"
    assert find_coercion(parse("String"), image, plain) is None


def test_table_columns_are_widened_implicitly(registry: TypeRegistry) -> None:
    c = coerce("Table[x: Int, y: String]", "Table[x: Float]", registry)
    assert c is not None and c.kind == "implicit"
    out = c.apply(pa.table({"x": [1, 2], "y": ["a", "b"]}))
    assert out.column("x").to_pylist() == [1.0, 2.0] and out.schema.field("x").type == pa.float64()
    check(out, parse("Table[x: Float, y: String]"))
    nullable = coerce("Table[n: Int | Null]", "Table[n: Float | Null]", registry)
    assert nullable is not None
    assert nullable.apply(pa.table({"n": [1, None]})).column("n").to_pylist() == [1.0, None]
    assert coerce("Table[x: String]", "Table[x: Int]", registry) is None


def test_records_to_table_keeps_keys_that_first_appear_in_later_records() -> None:
    from typesys.builtin_rules import records_to_table

    table = records_to_table([{"a": 1}, {"a": 2, "b": "x"}])
    assert table.column_names == ["a", "b"]
    assert table.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]


def test_to_float_of_an_int_too_large_is_a_coercion_error() -> None:
    from typesys import CoercionError
    from typesys.builtin_rules import to_float

    with pytest.raises(CoercionError):
        to_float(10**400)
