"""The control nodes: constants, branches with SKIP, merge, map's spec, reduce, fail and sleep."""

from __future__ import annotations

import time

import pytest

from nodes import SKIP
from nodes.builtin import control
from nodes.builtin.errors import ControlNodeCalledError, InputValueError, IntentionalFailure, ParamValueError
from nodes.testing import run_node


def test_constant_outputs_its_param() -> None:
    assert run_node(control.constant, params={"value": {"k": [1, 2]}}).value == {"k": [1, 2]}


def test_if_else_routes_the_value_and_skips_the_other_branch() -> None:
    taken = run_node(control.if_else, {"cond": True, "value": 7})
    assert taken["true"] == 7 and taken["false"] is SKIP
    other = run_node(control.if_else, {"cond": False, "value": 7})
    assert other["true"] is SKIP and other["false"] == 7


def test_if_else_ports_share_the_type_variable() -> None:
    spec = control.if_else.spec
    assert [p.name for p in spec.outputs] == ["true", "false"]
    assert {str(p.type) for p in spec.outputs} == {str(spec.input("value").type)} == {"T"}


def test_switch_routes_to_the_matching_case_or_default() -> None:
    out = run_node(control.switch, {"key": "b", "value": 1.5}, {"cases": ["a", "b"]})
    assert out["case_1"] == 1.5
    assert all(v is SKIP for k, v in out.items() if k != "case_1")
    out = run_node(control.switch, {"key": "zzz", "value": 1.5}, {"cases": ["a", "b"]})
    assert out["default"] == 1.5
    assert [p.name for p in control.switch.spec.outputs] == [f"case_{i}" for i in range(8)] + ["default"]


def test_switch_rejects_too_many_or_repeated_cases() -> None:
    with pytest.raises(ParamValueError, match=r"9 entries"):
        run_node(control.switch, {"key": "a", "value": 1}, {"cases": [str(i) for i in range(9)]})
    with pytest.raises(ParamValueError, match=r"repeats a key"):
        run_node(control.switch, {"key": "a", "value": 1}, {"cases": ["a", "a"]})


def test_merge_takes_the_first_non_skipped_input() -> None:
    assert control.merge.spec.accepts_skipped
    assert run_node(control.merge, {"a": SKIP, "b": 2, "c": 3}).value == 2
    assert run_node(control.merge, {"a": SKIP, "b": SKIP}).value is SKIP


def test_merge_after_if_else_joins_the_branches() -> None:
    for cond in (True, False):
        branches = run_node(control.if_else, {"cond": cond, "value": "v"})
        joined = run_node(control.merge, {"a": branches["true"], "b": branches["false"]})
        assert joined.value == "v" and not joined.skipped


def test_gate() -> None:
    assert run_node(control.gate, {"value": [1], "open": True}).value == [1]
    closed = run_node(control.gate, {"value": [1], "open": False})
    assert closed.value is SKIP and closed.skipped


def test_a_skipped_input_skips_ordinary_nodes() -> None:
    result = run_node(control.sleep, {"value": SKIP}, {"seconds": 5.0})
    assert result.skipped and result.value is SKIP


def test_map_is_declared_for_the_engine_and_refuses_direct_calls() -> None:
    spec = control.map_items.spec
    assert spec.id == "builtin/map@1" and spec.control == "map"
    assert str(spec.input("items").type) == "List[T]"
    assert str(spec.output("out").type) == "List[U]"
    sub = {"format": "rayweave.workflow/1", "name": "double", "inputs": {"item": {"type": "Int"}}}
    with pytest.raises(ControlNodeCalledError, match=r"expanded by the engine"):
        run_node(control.map_items, {"items": [1, 2]}, {"workflow": sub})


@pytest.mark.parametrize(
    ("items", "op", "expected"),
    [
        ([1, 2, 3], "sum", 6),
        ([0.1] * 10, "sum", 1.0),
        ([], "sum", 0),
        ([2, 3, 4], "product", 24),
        ([3, 1, 2], "min", 1),
        ([3, 1, 2], "max", 3),
        (["a", "b"], "concat", "ab"),
        ([[1], [2, 3]], "concat", [1, 2, 3]),
        ([True, False], "and", False),
        ([True, False], "or", True),
        ([], "and", True),
        ([5, 6], "first", 5),
        ([5, 6], "last", 6),
    ],
)
def test_reduce(items: list[object], op: str, expected: object) -> None:
    assert run_node(control.reduce, {"items": items}, {"op": op}).value == expected


def test_reduce_errors() -> None:
    with pytest.raises(ParamValueError, match=r"'op' is 'median'"):
        run_node(control.reduce, {"items": [1]}, {"op": "median"})
    with pytest.raises(InputValueError, match=r"empty list and op 'max' has no identity"):
        run_node(control.reduce, {"items": []}, {"op": "max"})
    with pytest.raises(InputValueError, match=r"op 'sum' needs numbers .*\['str'\]"):
        run_node(control.reduce, {"items": ["a", "b"]}, {"op": "sum"})
    with pytest.raises(InputValueError, match=r"strings or a list of lists"):
        run_node(control.reduce, {"items": ["a", 1]}, {"op": "concat"})


def test_fail_raises_its_message() -> None:
    with pytest.raises(IntentionalFailure, match=r"boom"):
        run_node(control.fail, {"value": 1}, {"message": "boom"})
    assert control.fail.spec.cache is False


def test_sleep_passes_the_value_through_after_waiting() -> None:
    start = time.perf_counter()
    assert run_node(control.sleep, {"value": "x"}, {"seconds": 0.05}).value == "x"
    assert time.perf_counter() - start >= 0.05
    with pytest.raises(ParamValueError, match=r"'seconds' is -1"):
        run_node(control.sleep, {"value": "x"}, {"seconds": -1.0})
