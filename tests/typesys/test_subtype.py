"""Subtyping rules, one test per rule, and the reasons given when a type is not assignable."""

from __future__ import annotations

import pytest

from typesys import (
    ANY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NULL,
    NUMBER,
    STRING,
    TypeRegistry,
    is_assignable,
    parse,
)


def ok(source: str, target: str, registry: TypeRegistry | None = None) -> bool:
    return bool(is_assignable(parse(source, registry), parse(target, registry), registry))


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("Int", "Number"),
        ("Float", "Number"),
        ("Int | Float", "Number"),
        ("Null", "Int | Null"),
        ("Int", "Int | Null"),
        ("String", "Any"),
        ("List[Int]", "Any"),
        ("List[Int]", "List[Number]"),
        ("List[Int]", "List[Int | Null]"),
        ("Dict[String, Int]", "Dict[String, Number]"),
        ("Tuple[Int, Float]", "Tuple[Number, Number]"),
        ("Tuple[Int, Int]", "List[Int]"),
        ("{name: String, age: Int}", "{name: String}"),
        ("{name: String, age: Int}", "{name: String, age?: Number}"),
        ("{name: String}", "{name: String, age?: Int}"),
        ("{p: {x: Int, y: Int}}", "{p: {x: Number}}"),
        ("Table[x: Float, y: String]", "Table[x: Float]"),
        ("Table[x: Float]", "Table"),
        ("Table[x: Int]", "Table[x: Number | Null]"),
        ("NDArray[float64, 2]", "NDArray[float64]"),
        ("NDArray[float64, 2]", "NDArray[*, 2]"),
        ("NDArray[float64, 2]", "NDArray"),
        ("Model[sklearn]", "Model"),
    ],
)
def test_assignable(source: str, target: str) -> None:
    answer = is_assignable(parse(source), parse(target))
    assert answer, answer.reason


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        ("Bool", "Int", "Bool is not a kind of Int"),
        ("Int", "Float", "Int is not a kind of Float"),
        ("Number", "Int", "not a kind"),
        ("Int | Null", "Int", "member Null"),
        ("Int | String", "Number", "member String"),
        ("Any", "Int", "only assignable to Any"),
        ("List[Number]", "List[Int]", "element type"),
        ("Dict[String, String]", "Dict[String, Int]", "value type"),
        ("Tuple[Int]", "Tuple[Int, Int]", "1 items where 2"),
        ("{name: String}", "{name: String, age: Int}", "required field 'age' is missing"),
        ("{name: String, age?: Int}", "{age: Int}", "required but optional"),
        ("{age: String}", "{age?: Int}", "field 'age' does not fit"),
        ("Table[x: Float]", "Table[x: Float, y: String]", "required column 'y'"),
        ("Table", "Table[x: Float]", "no declared column schema"),
        ("NDArray[float32]", "NDArray[float64]", "dtype float32"),
        ("NDArray", "NDArray[*, 2]", "rank"),
        ("Model", "Model[sklearn]", "flavor"),
        ("List[Int]", "Tuple[Int]", "different kinds"),
        ("Table[x: Float]", "List[{x: Float}]", "different kinds"),
    ],
)
def test_not_assignable_with_reason(source: str, target: str, why: str) -> None:
    answer = is_assignable(parse(source), parse(target))
    assert not answer
    assert why in answer.reason
    assert source in answer.reason or str(parse(source)) in answer.reason


def test_bool_is_not_an_int_even_though_python_says_so() -> None:
    assert not is_assignable(BOOL, INT)
    assert not is_assignable(BOOL, NUMBER)


def test_free_type_variable_in_target_is_reported() -> None:
    answer = is_assignable(parse("List[Int]"), parse("List[T]"))
    assert not answer
    assert "free type variable T" in answer.reason and "unify" in answer.reason
    assert is_assignable(parse("List[T]"), parse("List[T]"))
    assert "free type variables" in is_assignable(INT, parse("T | Null")).reason
    assert is_assignable(parse("T"), ANY)


def test_nominal_types_follow_their_declared_parent() -> None:
    registry = TypeRegistry.default()
    image = registry.register_type("Image", BYTES)
    registry.register_type("Photo", image)
    assert ok("Photo", "Image", registry)
    assert ok("Photo", "Bytes", registry)
    assert ok("List[Photo]", "List[Image] | Null", registry)
    assert not ok("Image", "Photo", registry)
    answer = is_assignable(BYTES, image, registry)
    assert not answer and "not declared as" in answer.reason


def test_open_records_with_optional_fields_are_not_transitive_in_one_corner() -> None:
    # Documented: an optional target field may be missing in the source, and records are open.
    assert ok("{a: String}", "{}")
    assert ok("{}", "{a?: Int}")
    assert not ok("{a: String}", "{a?: Int}")


def test_registry_memoizes_in_a_bounded_cache() -> None:
    registry = TypeRegistry(cache_size=2)
    pairs = [(INT, NUMBER), (FLOAT, NUMBER), (STRING, NULL)]
    for source, target in pairs * 2:
        registry.is_assignable(source, target)
    info = registry.cache_info()
    assert info.currsize <= 2 and info.maxsize == 2
    registry.is_assignable(STRING, NULL)
    assert registry.cache_info().hits == info.hits + 1
