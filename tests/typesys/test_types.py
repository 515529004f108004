"""Type terms: construction, canonical text, unions, hashing and pickling."""

from __future__ import annotations

import pickle

import pytest

from typesys import (
    ANY,
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
    Primitive,
    RecordType,
    TableType,
    TupleType,
    TypeVar,
    UnionType,
    optional,
    union,
)


def test_canonical_text_of_every_kind() -> None:
    cases = {
        ListType(INT): "List[Int]",
        DictType(STRING, ListType(FLOAT)): "Dict[String, List[Float]]",
        TupleType((INT, STRING)): "Tuple[Int, String]",
        TupleType(()): "Tuple[]",
        optional(ListType(INT)): "List[Int] | Null",
        RecordType((Field("name", STRING), Field("age", INT, required=False))): "{name: String, age?: Int}",
        RecordType(()): "{}",
        RecordType((Field("my field", INT),)): '{"my field": Int}',
        TableType(None): "Table",
        TableType((Field("x", FLOAT), Field("y", STRING))): "Table[x: Float, y: String]",
        NDArrayType(None, None): "NDArray",
        NDArrayType("float64", None): "NDArray[float64]",
        NDArrayType("float64", 2): "NDArray[float64, 2]",
        NDArrayType(None, 2): "NDArray[*, 2]",
        ModelType(None): "Model",
        ModelType("sklearn"): "Model[sklearn]",
        NominalType("Image", BYTES): "Image",
        TypeVar("T"): "T",
        TypeVar("K2"): "K2",
        TypeVar("Item"): "~Item",
    }
    for t, text in cases.items():
        assert str(t) == text


def test_union_flattens_dedups_and_orders_with_null_last() -> None:
    u = union(NULL, STRING, union(INT, STRING))
    assert isinstance(u, UnionType)
    assert u.members == (INT, STRING, NULL)
    assert str(u) == "Int | String | Null"
    assert union(INT, STRING) == union(STRING, INT)
    assert hash(union(INT, STRING)) == hash(union(STRING, INT))


def test_union_of_one_type_is_that_type() -> None:
    assert union(INT) is INT
    assert union(INT, INT) == INT
    assert union([INT, INT]) == INT


def test_union_needs_a_member() -> None:
    with pytest.raises(ValueError, match="at least one type"):
        union()


def test_optional_is_union_with_null() -> None:
    assert optional(INT) == union(INT, NULL)
    assert optional(optional(INT)) == optional(INT)
    assert str(optional(INT)) == "Int | Null"


def test_union_type_built_directly_must_be_canonical() -> None:
    with pytest.raises(ValueError, match=r"typesys.union"):
        UnionType((INT,))
    with pytest.raises(ValueError, match=r"typesys.union"):
        UnionType((INT, union(STRING, FLOAT)))


def test_terms_are_hashable_values() -> None:
    a = RecordType((Field("x", ListType(INT)),))
    b = RecordType((Field("x", ListType(INT)),))
    assert a == b and hash(a) == hash(b)
    assert len({a, b, ListType(INT), ListType(INT)}) == 2
    with pytest.raises(AttributeError):
        a.fields = ()  # type: ignore[misc]


def test_terms_survive_pickle_with_a_fresh_hash() -> None:
    t = DictType(STRING, optional(TableType((Field("x", FLOAT),))))
    copy = pickle.loads(pickle.dumps(t))
    assert copy == t and hash(copy) == hash(t) and str(copy) == str(t)


def test_invalid_terms_are_rejected_with_a_message() -> None:
    with pytest.raises(ValueError, match="not a primitive"):
        Primitive("Integer")
    with pytest.raises(ValueError, match="twice"):
        RecordType((Field("a", INT), Field("a", STRING)))
    with pytest.raises(TypeError, match=r"typesys\.parse"):
        ListType("Int")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rank"):
        NDArrayType("float64", -1)
    with pytest.raises(ValueError, match="identifier"):
        TypeVar("not a name")


def test_children_walk_the_term() -> None:
    t = RecordType((Field("a", ListType(INT)), Field("b", ANY)))
    assert t.children() == (ListType(INT), ANY)
    assert NominalType("Image", BYTES).children() == (BYTES,)
    assert t.field("a") == Field("a", ListType(INT)) and t.field("zz") is None
