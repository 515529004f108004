"""Runtime checks: paths in errors, sampling, full mode, tables, arrays, models and validators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pytest

from typesys import (
    BYTES,
    FLOAT,
    INT,
    ModelType,
    TypeCheckError,
    TypeRegistry,
    check,
    parse,
)


def error_of(value: object, text: str, **kwargs: object) -> TypeCheckError:
    with pytest.raises(TypeCheckError) as info:
        check(value, parse(text), **kwargs)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "Int"),
        (np.int32(3), "Int"),
        (1.5, "Float"),
        (np.float32(1.5), "Float"),
        (1, "Number"),
        (2.0, "Number"),
        (True, "Bool"),
        (None, "Null"),
        ("s", "String"),
        (b"x", "Bytes"),
        (object(), "Any"),
        ([1, 2], "List[Int]"),
        ((1, 2), "List[Int]"),
        ((1, "a"), "Tuple[Int, String]"),
        ({"a": 1}, "Dict[String, Int]"),
        ({"name": "a", "extra": 1}, "{name: String, age?: Int}"),
        (None, "Int | Null"),
        ([None, 1], "List[Int | Null]"),
    ],
)
def test_values_of_the_type_pass(value: object, text: str) -> None:
    check(value, parse(text), full=True)


@pytest.mark.parametrize(
    ("value", "text", "message"),
    [
        ([1, 2, 3, "x"], "List[Int]", "[3]: expected Int, got str 'x'"),
        ([{"name": "a"}, {"name": 3}], "List[{name: String}]", "[1].name: expected String, got int 3"),
        (True, "Int", "expected Int, got bool True"),
        (1.5, "Int", "expected Int, got float 1.5"),
        ({"a": {"b": [1, None]}}, "Dict[String, {b: List[Int]}]", "a.b[1]: expected Int, got None"),
        ({"age": 3}, "{name: String}", "name: expected String, got nothing (required field is missing)"),
        ((1,), "Tuple[Int, Int]", "needs exactly 2 items"),
        ({1: "a"}, "Dict[String, String]", "[1]: expected String, got int 1"),
        ({"x": ["a"]}, "{x: List[Int]} | Null", "x[0]: expected Int, got str 'a'"),
        ("s", "Int | Null", "expected Int | Null, got str 's'"),
        ({"odd key": 1}, '{"odd key": String}', "['odd key']: expected String"),
    ],
)
def test_errors_name_the_path(value: object, text: str, message: str) -> None:
    err = error_of(value, text)
    assert message in str(err)
    assert isinstance(err, TypeError)


def test_error_carries_path_expected_actual() -> None:
    err = error_of([1, {"name": "x"}], "List[Int | {name: Int}]")
    assert err.path == "[1].name"
    assert err.expected == "Int"
    assert err.actual == "str 'x'"
    assert "workflow w, node n, port p: [1].name" in str(err.with_context("workflow w, node n, port p"))


def test_big_lists_are_sampled_and_full_mode_checks_everything() -> None:
    values: list[object] = list(range(100_000))
    values[50_000] = "bad"
    check([*values[:-1], 1], parse("List[Int]"), sample_size=10)  # the sample misses index 50000
    err = error_of(values, "List[Int]", full=True)
    assert err.path == "[50000]"
    # The first and last elements are always in the sample.
    values[50_000] = 1
    values[-1] = "last"
    assert error_of(values, "List[Int]", sample_size=5).path == "[99999]"


def test_sampling_also_applies_to_nested_structures() -> None:
    rows = [{"x": 1} for _ in range(1000)]
    rows[500] = {"x": "bad"}
    check(rows[:500] + rows[501:], parse("List[{x: Int}]"), sample_size=10)
    assert error_of(rows, "List[{x: Int}]", full=True).path == "[500].x"


def test_sample_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sample_size"):
        check([1], parse("List[Int]"), sample_size=0)


def test_records_accept_dataclasses_models_and_named_tuples() -> None:
    @dataclass
    class Person:
        name: str
        age: int

    class Pair(NamedTuple):
        name: str
        age: int

    from pydantic import BaseModel

    class User(BaseModel):
        name: str
        age: int

    t = parse("{name: String, age: Int}")
    for value in (Person("a", 1), Pair("a", 1), User(name="a", age=1)):
        check(value, t)
    assert error_of(Person("a", "x"), "{name: String, age: Int}").path == "age"  # type: ignore[arg-type]
    assert "a record is a mapping" in str(error_of("text", "{name: String}"))


def test_tables_are_checked_against_their_arrow_schema() -> None:
    table = pa.table({"x": [1.0, 2.0], "y": ["a", "b"], "n": [1, None]})
    check(table, parse("Table"))
    check(table, parse("Table[x: Float, y: String]"))
    check(table, parse("Table[x: Number, n: Int | Null, z?: Int]"))
    assert "required column is missing" in str(error_of(table, "Table[z: Int]"))
    assert "Arrow column of type string" in str(error_of(table, "Table[y: Int]"))
    assert "1 null values" in str(error_of(table, "Table[n: Int]"))
    assert error_of([{"x": 1.0}], "Table").expected == "Table"


def test_arrays_are_checked_for_dtype_and_rank() -> None:
    arr = np.zeros((2, 3), dtype=np.float32)
    check(arr, parse("NDArray"))
    check(arr, parse("NDArray[float32, 2]"))
    check(arr, parse("NDArray[*, 2]"))
    assert "rank 2" in str(error_of(arr, "NDArray[float32, 3]"))
    assert "dtype float32" in str(error_of(arr, "NDArray[float64]"))
    assert "shape and a dtype" in str(error_of([1.0], "NDArray"))


def test_models_accept_anything_unless_a_validator_is_registered() -> None:
    check(object(), parse("Model[sklearn]"))
    registry = TypeRegistry.default()
    registry.add_validator(ModelType("sklearn"), lambda m: hasattr(m, "predict"))

    class Estimator:
        def predict(self) -> None:
            return None

    check(Estimator(), parse("Model[sklearn]"), registry=registry)
    with pytest.raises(TypeCheckError, match="rejected by its validator"):
        check(object(), parse("Model[sklearn]"), registry=registry)


def test_nominal_types_check_their_parent_then_their_validator() -> None:
    registry = TypeRegistry.default()

    def png(value: bytes) -> None:
        if not value.startswith(b"\x89PNG"):
            raise ValueError("not a PNG file")

    image = registry.register_type("Png", BYTES, validator=png)
    check(b"\x89PNG....", image, registry=registry)
    with pytest.raises(TypeCheckError, match="not a PNG file"):
        check(b"GIF89a", image, registry=registry)
    with pytest.raises(TypeCheckError, match="expected Png, got str"):
        check("text", image, registry=registry)


def test_unsolved_type_variables_accept_anything() -> None:
    check(["a", 1], parse("List[T]"))


def test_ints_pass_as_floats_at_runtime_but_not_the_reverse() -> None:
    check(1, INT)
    check(1, FLOAT)  # PEP 484 numeric promotion: `sum([])` is a fine result of a node returning float
    check([1, 2.5], parse("List[Float]"), full=True)
    with pytest.raises(TypeCheckError):
        check(1.0, INT)
    with pytest.raises(TypeCheckError):
        check(True, FLOAT)


def test_errors_survive_pickle_as_ray_ships_them() -> None:
    import pickle

    err = error_of([1, "x"], "List[Int]").with_context("workflow w, node n, port p")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.expected, copy.actual) == ("[1]", "Int", "str 'x'")
    assert str(copy) == str(err)
    from typesys import TypeParseError

    with pytest.raises(TypeParseError) as info:
        parse("List[")
    parsed = pickle.loads(pickle.dumps(info.value))
    assert parsed.position == 5 and str(parsed) == str(info.value)
