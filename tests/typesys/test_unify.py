"""Unification of type variables across node signatures, substitution and free variables."""

from __future__ import annotations

import pytest

from typesys import (
    FLOAT,
    INT,
    STRING,
    TypeVar,
    UnificationError,
    free_vars,
    parse,
    substitute,
    unify,
)


def solve(*pairs: tuple[str, str]) -> dict[str, str]:
    return {name: str(t) for name, t in unify([(parse(s), parse(t)) for s, t in pairs]).items()}


def test_first_of_a_list() -> None:
    # first(xs: List[T]) -> T wired to a List[Int]
    subst = unify([(parse("List[Int]"), parse("List[T]"))])
    assert subst == {"T": INT}
    assert substitute(TypeVar("T"), subst) == INT


def test_zip_of_two_lists() -> None:
    # zip(a: List[A], b: List[B]) -> List[Tuple[A, B]]
    subst = unify([(parse("List[Int]"), parse("List[A]")), (parse("List[String]"), parse("List[B]"))])
    assert substitute(parse("List[Tuple[A, B]]"), subst) == parse("List[Tuple[Int, String]]")


def test_variables_on_the_source_side_are_solved_too() -> None:
    assert solve(("List[T]", "List[Int]")) == {"T": "Int"}


def test_structures_are_matched_deeply() -> None:
    assert solve(("Dict[String, List[{x: Int, y: Float}]]", "Dict[K, List[{x: V}]]")) == {
        "K": "String",
        "V": "Int",
    }
    assert solve(("Tuple[Int, String]", "Tuple[A, B]")) == {"A": "Int", "B": "String"}
    assert solve(("Tuple[Int, Int]", "List[T]")) == {"T": "Int"}
    assert solve(("Table[x: Float]", "Table[x: T]")) == {"T": "Float"}


def test_optional_variables_absorb_null() -> None:
    assert solve(("Int | Null", "T | Null")) == {"T": "Int"}
    assert solve(("Int", "T | Null")) == {"T": "Int"}
    assert solve(("Int | String | Null", "T | Null")) == {"T": "Int | String"}


def test_one_variable_bound_twice_widens_when_compatible() -> None:
    assert solve(("Int", "T"), ("Number", "T")) == {"T": "Number"}
    assert solve(("Int", "T"), ("Float", "T")) == {"T": "Float"}  # Int -> Float is implicit
    assert solve(("Int", "T"), ("Int", "T")) == {"T": "Int"}


def test_conflict_names_both_sides() -> None:
    with pytest.raises(UnificationError) as info:
        unify([(INT, TypeVar("T")), (parse("List[String]"), TypeVar("T"))])
    message = str(info.value)
    assert "T cannot be both Int" in message and "List[String]" in message
    assert isinstance(info.value, TypeError)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(UnificationError, match=r"cannot unify Int with List\[T\]"):
        unify([(INT, parse("List[T]"))])
    with pytest.raises(UnificationError, match="different lengths"):
        unify([(parse("Tuple[Int]"), parse("Tuple[A, B]"))])


def test_chains_between_variables_resolve() -> None:
    subst = unify([(TypeVar("A"), TypeVar("B")), (INT, TypeVar("B"))])
    assert substitute(TypeVar("A"), subst) == INT


def test_infinite_types_are_rejected() -> None:
    with pytest.raises(UnificationError, match="contain itself"):
        unify([(parse("List[T]"), TypeVar("T"))])


def test_pairs_without_variables_are_left_to_the_caller() -> None:
    assert unify([(STRING, INT), (FLOAT, FLOAT)]) == {}


def test_free_vars_and_substitute() -> None:
    t = parse("Dict[K, List[V | Null]] | {a: ~Item}")
    assert free_vars(t) == {"K", "V", "Item"}
    out = substitute(t, {"K": STRING, "V": INT, "Item": FLOAT})
    assert out == parse("Dict[String, List[Int | Null]] | {a: Float}")
    assert free_vars(out) == frozenset()
    assert substitute(parse("T | Null"), {"T": parse("Int | Null")}) == parse("Int | Null")
