"""The list and dict nodes, including their generic port types."""

from __future__ import annotations

import pytest

import typesys
from nodes.builtin import collections as c
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError
from nodes.testing import run_node


def test_generic_signatures_use_type_variables() -> None:
    assert str(c.first.spec.input("items").type) == "List[T]"
    assert str(c.first.spec.output("out").type) == "T"
    assert str(c.zip_lists.spec.output("out").type) == "List[Tuple[A, B]]"
    # Unifying first's input with a List[Int] solves T, so its output is an Int.
    subst = typesys.unify([(typesys.parse("List[Int]"), c.first.spec.input("items").type)])
    assert typesys.substitute(c.first.spec.output("out").type, subst) == typesys.INT


def test_length_get_first_last() -> None:
    items = [10, 20, 30]
    assert run_node(c.length, {"items": items}).value == 3
    assert run_node(c.get, {"items": items}, {"index": -1}).value == 30
    assert run_node(c.first, {"items": items}).value == 10
    assert run_node(c.last, {"items": items}).value == 30


def test_get_out_of_range_names_the_valid_range() -> None:
    with pytest.raises(MissingKeyError, match=r"'index' is 5 .* 3 elements; use an index in \[-3, 2\]"):
        run_node(c.get, {"items": [1, 2, 3]}, {"index": 5})


def test_first_of_empty_list_fails() -> None:
    with pytest.raises(InputValueError, match=r"empty list"):
        run_node(c.first, {"items": []})
    with pytest.raises(InputValueError, match=r"empty list"):
        run_node(c.last, {"items": []})


def test_slice_sort_reverse() -> None:
    assert run_node(c.slice_list, {"items": [0, 1, 2, 3, 4]}, {"start": 1, "stop": 4}).value == [1, 2, 3]
    assert run_node(c.slice_list, {"items": [0, 1, 2, 3, 4]}, {"step": -2}).value == [4, 2, 0]
    with pytest.raises(ParamValueError, match=r"'step' is 0"):
        run_node(c.slice_list, {"items": [1]}, {"step": 0})
    assert run_node(c.sort, {"items": [3, 1, 2]}).value == [1, 2, 3]
    assert run_node(c.sort, {"items": [3, 1, 2]}, {"reverse": True}).value == [3, 2, 1]
    assert run_node(c.reverse, {"items": [1, 2, 3]}).value == [3, 2, 1]


def test_sort_records_by_key() -> None:
    rows = [{"n": "b", "x": 2}, {"n": "a", "x": 1}]
    assert run_node(c.sort, {"items": rows}, {"key": "x"}).value == [rows[1], rows[0]]
    with pytest.raises(MissingKeyError, match=r"'key' is 'y'"):
        run_node(c.sort, {"items": rows}, {"key": "y"})


def test_sort_incomparable_elements_fails_clearly() -> None:
    with pytest.raises(InputValueError, match=r"cannot be compared"):
        run_node(c.sort, {"items": [1, "a"]})


def test_unique_keeps_first_occurrences_in_order() -> None:
    assert run_node(c.unique, {"items": [3, 1, 3, 2, 1]}).value == [3, 1, 2]
    assert run_node(c.unique, {"items": [{"a": 1}, {"a": 1}, {"a": 2}]}).value == [{"a": 1}, {"a": 2}]


def test_flatten_append_concat() -> None:
    assert run_node(c.flatten, {"items": [[1], [], [2, 3]]}).value == [1, 2, 3]
    assert run_node(c.append, {"items": [1], "value": 2}).value == [1, 2]
    assert run_node(c.concat_lists, {"a": [1], "b": [2, 3]}).value == [1, 2, 3]


def test_zip() -> None:
    assert run_node(c.zip_lists, {"a": [1, 2], "b": ["x", "y"]}).value == [(1, "x"), (2, "y")]
    with pytest.raises(InputValueError, match=r"'a' \(2 elements\) and 'b' \(1 elements\)"):
        run_node(c.zip_lists, {"a": [1, 2], "b": ["x"]})
    assert run_node(c.zip_lists, {"a": [1, 2], "b": ["x"]}, {"strict": False}).value == [(1, "x")]


def test_range() -> None:
    assert run_node(c.range_list, params={"stop": 5}).value == [0, 1, 2, 3, 4]
    assert run_node(c.range_list, params={"start": 5, "stop": 0, "step": -2}).value == [5, 3, 1]
    with pytest.raises(ParamValueError, match=r"more than 10,000,000"):
        run_node(c.range_list, params={"stop": 10**9})


def test_dict_nodes() -> None:
    d = {"a": 1, "b": 2}
    assert run_node(c.dict_get, {"mapping": d}, {"key": "b"}).value == 2
    with pytest.raises(MissingKeyError, match=r"'z' is not in input port 'mapping' \(keys: \['a', 'b'\]\)"):
        run_node(c.dict_get, {"mapping": d}, {"key": "z"})
    out = run_node(c.dict_set, {"mapping": d, "value": 3}, {"key": "c"}).value
    assert out == {"a": 1, "b": 2, "c": 3}
    assert d == {"a": 1, "b": 2}  # the input is not modified
    assert run_node(c.dict_merge, {"a": d, "b": {"b": 9}}).value == {"a": 1, "b": 9}
    assert run_node(c.dict_keys, {"mapping": d}).value == ["a", "b"]
    assert run_node(c.dict_values, {"mapping": d}).value == [1, 2]
