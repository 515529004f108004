"""The catalog: lookup by id with helpful errors, search by name/category/tag/port type, JSON export."""

from __future__ import annotations

import json
from typing import TypeVar

import pytest

import typesys
from nodes import Catalog, node
from nodes.errors import DuplicateNodeTypeError, UnknownNodeTypeError

T = TypeVar("T")


@node(plugin="demo", category="math", tags=["arith"])
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


@node(plugin="demo", category="math", version="2.0.0")
def add_v2(a: float, b: float) -> float:
    """Add floats."""
    return a + b


@node(plugin="demo", name="add", category="math", version="2.3.1")
def add_float(a: float, b: float) -> float:
    """Add floats (named add, major 2)."""
    return a + b


@node(plugin="demo", category="text")
def shout(s: str) -> str:
    """Upper-case."""
    return s.upper()


@node(plugin="demo", category="collections")
def first(xs: list[T]) -> T:
    """First element."""
    return xs[0]


@node(plugin="demo", category="text")
def length(s: str) -> int:
    """Length."""
    return len(s)


def _catalog() -> Catalog:
    return Catalog([add, add_v2, add_float, shout, first, length])


def test_get_by_id_and_by_name_without_major() -> None:
    catalog = _catalog()
    assert catalog.get("demo/add@1") is add
    assert catalog.get("demo/add@2") is add_float
    assert catalog.get("demo/add") is add_float  # highest major
    assert "demo/shout@1" in catalog and "demo/nope@1" not in catalog
    assert len(catalog) == 6


def test_unknown_id_lists_existing_versions_or_close_matches() -> None:
    catalog = _catalog()
    with pytest.raises(UnknownNodeTypeError) as info:
        catalog.get("demo/add@3")
    assert isinstance(info.value, KeyError)
    assert "demo/add@1 (version 1.0.0)" in str(info.value) and "demo/add@2 (version 2.3.1)" in str(info.value)
    with pytest.raises(UnknownNodeTypeError, match=r"did you mean demo/shout@1"):
        catalog.get("demo/shuot@1")
    with pytest.raises(UnknownNodeTypeError, match=r"did you mean demo/length@1"):
        catalog.get("builtin/lenght@1")


def test_duplicate_ids_are_rejected_unless_replacing() -> None:
    catalog = _catalog()
    catalog.add(add)  # the same definition again is harmless

    @node("add", plugin="demo", category="math")
    def other_add(a: int, b: int) -> int:
        """Another add."""
        return a - b

    with pytest.raises(DuplicateNodeTypeError, match="demo/add@1 is already in the catalog"):
        catalog.add(other_add)
    catalog.add(other_add, replace=True)
    assert catalog.get("demo/add@1") is other_add


def test_copy_is_an_independent_plain_catalog_with_the_same_registry() -> None:
    registry = typesys.TypeRegistry.default()
    catalog = Catalog([add, shout], registry=registry)
    copy = catalog.copy()
    copy.add(length)
    assert type(copy) is Catalog and copy.registry is registry
    assert [s.id for s in copy.specs()] == ["demo/add@1", "demo/length@1", "demo/shout@1"]
    assert "demo/length@1" not in catalog  # the original is left unchanged


def test_find_by_name_category_tag() -> None:
    catalog = _catalog()
    assert [s.id for s in catalog.find(name="add")] == ["demo/add@1", "demo/add@2"]
    assert [s.id for s in catalog.find(category="text")] == ["demo/length@1", "demo/shout@1"]
    assert [s.id for s in catalog.find(tag="arith")] == ["demo/add@1"]
    assert catalog.find(category="nope") == []


def test_find_by_port_type_uses_assignability_and_type_variables() -> None:
    catalog = _catalog()
    # An Int flows into Int ports and (implicitly widening, if typesys allows it) Float ones; never into String.
    accepts_int = {s.id for s in catalog.find(accepts=typesys.INT)}
    assert "demo/add@1" in accepts_int and "demo/shout@1" not in accepts_int
    assert {s.id for s in catalog.find(accepts="String")} == {"demo/shout@1", "demo/length@1"}
    assert [s.id for s in catalog.find(accepts="List[String]")] == ["demo/first@1"]
    produces_string = {s.id for s in catalog.find(produces="String")}
    assert "demo/shout@1" in produces_string and "demo/length@1" not in produces_string
    # first(xs: List[T]) -> T can produce anything once T is solved.
    assert "demo/first@1" in {s.id for s in catalog.find(produces="Bytes")}
    assert [s.id for s in catalog.find(category="text", produces="Int")] == ["demo/length@1"]


def test_to_json_is_stable_and_serializable() -> None:
    catalog = _catalog()
    data = catalog.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data == _catalog().to_json()
    ids = [n["id"] for n in data["nodes"]]
    assert ids == sorted(ids)
    entry = next(n for n in data["nodes"] if n["id"] == "demo/add@1")
    port = entry["inputs"][0]
    assert port["name"] == "a" and port["type"] == "Int" and port["required"] is True
    assert typesys.from_json(port["type_json"]) == typesys.INT
    assert port["schema"]["type"] == "integer"
    assert entry["outputs"][0]["name"] == "out" and entry["version"] == "1.0.0"


def test_builtin_catalog_holds_the_builtin_plugin() -> None:
    catalog = Catalog.builtin()
    assert len(catalog) > 0
    assert {s.plugin for s in catalog.specs()} == {"builtin"}
    assert catalog.get("builtin/to_int@1").spec.input_names == ["value"]
