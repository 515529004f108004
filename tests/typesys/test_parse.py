"""The parser: every form of the canonical text, aliases, and errors with positions."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from typesys import (
    BYTES,
    FLOAT,
    INT,
    NULL,
    STRING,
    DictType,
    Field,
    ListType,
    ModelType,
    NDArrayType,
    NominalType,
    RecordType,
    TableType,
    TupleType,
    TypeParseError,
    TypeRegistry,
    TypeTooDeepError,
    TypeVar,
    optional,
    parse,
    union,
)
from typesys.parse import MAX_TYPE_DEPTH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Int", INT),
        ("List[Int] | Null", optional(ListType(INT))),
        ("Table[x: Float, y: String]", TableType((Field("x", FLOAT), Field("y", STRING)))),
        ("{name: String, age?: Int}", RecordType((Field("name", STRING), Field("age", INT, False)))),
        ("Dict[String, List[Int | Null]]", DictType(STRING, ListType(optional(INT)))),
        ("Tuple[Int, String]", TupleType((INT, STRING))),
        ("Tuple[]", TupleType(())),
        ("NDArray[*, 2]", NDArrayType(None, 2)),
        ("Model[torch]", ModelType("torch")),
        ('{"odd name": Int}', RecordType((Field("odd name", INT),))),
        ("List[T]", ListType(TypeVar("T"))),
        ("~Item", TypeVar("Item")),
    ],
)
def test_parses_canonical_text(text: str, expected: object) -> None:
    assert parse(text) == expected
    assert str(parse(text)) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Optional[Int]", "Int | Null"),
        ("Union[String, Int]", "Int | String"),
        ("None | Int", "Int | Null"),
        ("  List [ Int ]|Null ", "List[Int] | Null"),
        ("(Int | String) | Null", "Int | String | Null"),
        ("Tensor[float32, 4]", "NDArray[float32, 4]"),
        ("NDArray[*]", "NDArray"),
        ("Int | Int", "Int"),
    ],
)
def test_aliases_and_spacing_print_canonically(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("List[Int", 8, "']'"),
        ("List Int", 5, "'['"),
        ("Dict[String]", 11, "','"),
        ("{name String}", 6, "':'"),
        ("Int |", 5, "a type name"),
        ("Int String", 4, "end of the type"),
        ("Foo", 0, "registered type name"),
        ("{a: Int, a: String}", 9, "repeated"),
        ("NDArray[float64, x]", 17, "rank"),
        ("", 0, "a type name"),
        ("List[Int]]", 9, "end of the type"),
        ("Int & String", 4, "end of the type"),
        ('{"\\q": Int}', 1, "JSON string"),
        ('{"": Int}', 1, "non-empty field name"),
    ],
)
def test_malformed_text_names_position_and_expectation(text: str, position: int, expected: str) -> None:
    with pytest.raises(TypeParseError) as info:
        parse(text)
    assert info.value.position == position
    assert expected in info.value.expected
    assert isinstance(info.value, ValueError)
    assert f"position {position}" in str(info.value)


def test_nominal_names_need_the_registry() -> None:
    registry = TypeRegistry.default()
    image = registry.register_type("Image", BYTES)
    assert parse("List[Image]", registry) == ListType(NominalType("Image", BYTES))
    assert parse("Image | Null", registry) == union(image, NULL)
    with pytest.raises(TypeParseError, match="Image"):
        parse("Image")


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "List[" * n + "Int" + "]" * n,
        lambda n: "(" * n + "Int" + ")" * n,
        lambda n: "{a: " * n + "Int" + "}" * n,
        lambda n: "Dict[String, " * n + "Int" + "]" * n,
    ],
    ids=["list", "parens", "record", "dict"],
)
def test_types_nested_beyond_the_limit_are_a_parse_error(make: Callable[[int], str]) -> None:
    # Deep enough to exhaust Python's recursion limit if nothing stopped it (2,000 levels, as a client sent).
    for depth in (MAX_TYPE_DEPTH + 1, 250, 2_000):
        with pytest.raises(TypeTooDeepError) as info:
            parse(make(depth))
        assert isinstance(info.value, TypeParseError)
        assert f"deeper than {MAX_TYPE_DEPTH} levels" in str(info.value)
        assert len(str(info.value)) < 400  # the text is abbreviated, not echoed 2,000 levels deep
        assert pickle.loads(pickle.dumps(info.value)).args == info.value.args


def test_types_at_the_depth_limit_parse_and_print() -> None:
    text = "List[" * (MAX_TYPE_DEPTH - 1) + "Int" + "]" * (MAX_TYPE_DEPTH - 1)
    assert str(parse(text)) == text
    wide = "Tuple[" + ", ".join(["List[Int]"] * 500) + "]"  # width is not depth
    assert str(parse(wide)) == wide
