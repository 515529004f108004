"""Port types from Python annotations."""

from __future__ import annotations

import collections.abc as cabc
import sys
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple, NewType, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from pydantic import BaseModel

from typesys import (
    BYTES,
    AnnotationError,
    ListType,
    NDArrayType,
    NominalType,
    TableType,
    TypeRegistry,
    TypeVar,
    from_annotation,
    parse,
)

T = typing.TypeVar("T")


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (int, "Int"),
        (float, "Float"),
        (bool, "Bool"),
        (str, "String"),
        (bytes, "Bytes"),
        (None, "Null"),
        (type(None), "Null"),
        (Any, "Any"),
        (object, "Any"),
        (list[int], "List[Int]"),
        (typing.List[str], "List[String]"),  # noqa: UP006
        (cabc.Sequence[float], "List[Float]"),
        (list, "List[Any]"),
        (dict[str, list[float]], "Dict[String, List[Float]]"),
        (cabc.Mapping[str, int], "Dict[String, Int]"),
        (tuple[int, str], "Tuple[Int, String]"),
        (tuple[int, ...], "List[Int]"),
        (int | None, "Int | Null"),
        (Optional[int], "Int | Null"),  # noqa: UP045
        (Union[int, str], "Int | String"),  # noqa: UP007
        (Literal["a", "b"], "String"),
        (Literal[1, "a"], "Int | String"),
        (list[T], "List[T]"),
        (Annotated[int, "meta"], "Int"),
        ("List[Int] | Null", "List[Int] | Null"),
        (parse("Table[x: Float]"), "Table[x: Float]"),
    ],
)
def test_builtin_and_typing_annotations(annotation: object, text: str) -> None:
    assert str(from_annotation(annotation)) == text


def test_scalar_subclasses_and_numpy_scalars() -> None:
    import enum

    class Color(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        LOW = 1

    assert str(from_annotation(Color)) == "String"
    assert str(from_annotation(Level)) == "Int"
    assert str(from_annotation(np.float32)) == "Float"
    assert str(from_annotation(np.int64)) == "Int"
    assert str(from_annotation(np.bool_)) == "Bool"


def test_type_variables_keep_their_name() -> None:
    Item = typing.TypeVar("Item")
    assert from_annotation(Item) == TypeVar("Item")


@dataclass
class Point:
    x: float
    y: float = 0.0
    tags: list[str] = field(default_factory=list)


class User(BaseModel):
    name: str
    age: int | None = None
    point: Point


class Movie(TypedDict, total=False):
    title: str


class Pair(NamedTuple):
    left: int
    right: str = ""


def test_records_from_classes() -> None:
    assert str(from_annotation(Point)) == "{x: Float, y?: Float, tags?: List[String]}"
    assert (
        str(from_annotation(User))
        == "{name: String, age?: Int | Null, point: {x: Float, y?: Float, tags?: List[String]}}"
    )
    assert str(from_annotation(Movie)) == "{title?: String}"
    assert str(from_annotation(Pair)) == "{left: Int, right?: String}"
    assert str(from_annotation(list[Point])) == "List[{x: Float, y?: Float, tags?: List[String]}]"


def test_third_party_annotations() -> None:
    assert from_annotation(pa.Table) == TableType(None)
    schema = pa.schema([("x", pa.float64()), ("y", pa.list_(pa.int32()))])
    assert str(from_annotation(schema)) == "Table[x: Float, y: List[Int]]"
    assert from_annotation(np.ndarray) == NDArrayType(None, None)
    assert from_annotation(npt.NDArray[np.float64]) == NDArrayType("float64", None)


def test_annotated_can_carry_a_port_type() -> None:
    image = NominalType("Image", BYTES)
    assert from_annotation(Annotated[bytes, image]) == image
    assert from_annotation(list[Annotated[bytes, image]]) == ListType(image)


def test_new_types_use_the_registry() -> None:
    ImageBytes = NewType("ImageBytes", bytes)
    assert from_annotation(ImageBytes) == BYTES
    registry = TypeRegistry.default()
    nominal = registry.register_type("ImageBytes", BYTES)
    assert from_annotation(ImageBytes, registry) == nominal


class Unknown:
    pass


@dataclass
class Node:
    value: int
    children: list[Node]


@dataclass
class HasBad:
    ok: int
    bad: Unknown


@pytest.mark.parametrize(
    ("annotation", "named"),
    [
        (Unknown, "Unknown"),
        (complex, "complex"),
        (cabc.Callable[[int], int], "Callable"),
        (Node, "refers to itself"),
        (HasBad, "field 'bad' of HasBad"),
        ("List[", "is not a type"),
    ],
)
def test_annotations_without_equivalent_fail_naming_them(annotation: object, named: str) -> None:
    with pytest.raises(AnnotationError) as info:
        from_annotation(annotation)
    assert named in str(info.value)
    assert isinstance(info.value, TypeError)


def test_typesys_imports_without_optional_libraries() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['numpy'] = None; sys.modules['pydantic'] = None\n"
        "import typesys\n"
        "print(typesys.from_annotation(list[int]), typesys.TypeRegistry.default() is not None)\n"
        "typesys.check([1], typesys.parse('List[Int]'))\n"
        "try:\n    typesys.check([1], typesys.parse('Table'))\nexcept typesys.TypeCheckError as e: print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("List[Int] True") and "ok" in out.stdout
