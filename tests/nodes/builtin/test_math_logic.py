"""The math and logic nodes, run through nodes.testing.run_node with type checks."""

from __future__ import annotations

import pytest

import typesys
from nodes import NodeDefinition
from nodes.builtin import logic
from nodes.builtin import math as m
from nodes.builtin.errors import InputValueError, ParamValueError
from nodes.errors import NodeInputError
from nodes.testing import run_node


@pytest.mark.parametrize(
    ("defn", "a", "b", "expected"),
    [
        (m.add, 1.5, 2.0, 3.5),
        (m.subtract, 1.0, 3.0, -2.0),
        (m.multiply, 2.5, 4.0, 10.0),
        (m.divide, 7.0, 2.0, 3.5),
        (m.minimum, 3.0, -1.0, -1.0),
        (m.maximum, 3.0, -1.0, 3.0),
    ],
)
def test_binary_arithmetic(defn: NodeDefinition, a: float, b: float, expected: float) -> None:
    assert run_node(defn, {"a": a, "b": b}).value == expected


def test_number_ports_take_ints_and_floats_and_keep_ints_exact() -> None:
    assert str(m.add.spec.input("a").type) == "Number"
    ints = run_node(m.add, {"a": 2**60, "b": 1}).value
    assert ints == 2**60 + 1 and isinstance(ints, int)  # no detour through float
    mixed = run_node(m.add, {"a": 1, "b": 0.5}).value
    assert mixed == 1.5
    assert run_node(m.sum_numbers, {"values": [1, 2, 3]}).value == 6
    # A Number output feeds Float ports through the implicit coercion the compiler applies silently.
    coercion = typesys.find_coercion(typesys.NUMBER, typesys.FLOAT, typesys.TypeRegistry.default())
    assert coercion is not None and coercion.kind == "implicit"
    # Fractional results are always Float.
    assert str(m.divide.spec.output("out").type) == "Float"
    assert run_node(m.divide, {"a": 4, "b": 2}).value == 2.0


def test_integer_nodes() -> None:
    assert run_node(m.floor_divide, {"a": -7, "b": 2}).value == -4
    assert run_node(m.modulo, {"a": -7, "b": 3}).value == 2


@pytest.mark.parametrize("defn", [m.divide, m.floor_divide, m.modulo])
def test_division_by_zero_names_the_port(defn: NodeDefinition) -> None:
    zero = 0.0 if defn is m.divide else 0
    one = 1.0 if defn is m.divide else 1
    with pytest.raises(InputValueError, match=r"input port 'b' is 0"):
        run_node(defn, {"a": one, "b": zero})


def test_unary_and_rounding() -> None:
    assert run_node(m.negate, {"x": 2.0}).value == -2.0
    assert run_node(m.absolute, {"x": -2.5}).value == 2.5
    assert run_node(m.round_number, {"x": 2.567}, {"digits": 2}).value == 2.57
    assert run_node(m.round_number, {"x": 2.5}).value == 2.0  # half to even
    assert run_node(m.power, {"base": 2.0, "exponent": 10.0}).value == 1024.0


def test_power_overflow_is_a_clear_error() -> None:
    with pytest.raises(InputValueError, match=r"not a finite number"):
        run_node(m.power, {"base": 10.0, "exponent": 400.0})


def test_clamp() -> None:
    assert run_node(m.clamp, {"x": 5.0}, {"low": 0.0, "high": 1.0}).value == 1.0
    assert run_node(m.clamp, {"x": -5.0}, {"low": 0.0, "high": 1.0}).value == 0.0
    with pytest.raises(ParamValueError, match=r"'low'"):
        run_node(m.clamp, {"x": 0.5}, {"low": 2.0, "high": 1.0})


def test_sum_and_mean() -> None:
    assert run_node(m.sum_numbers, {"values": [0.1] * 10}).value == 1.0  # fsum: exact
    assert run_node(m.sum_numbers, {"values": []}).value == 0.0
    assert run_node(m.mean, {"values": [1.0, 2.0, 6.0]}).value == 3.0
    with pytest.raises(InputValueError, match=r"empty list"):
        run_node(m.mean, {"values": []})


@pytest.mark.parametrize(
    ("op", "expected"), [("==", False), ("!=", True), ("<", True), ("<=", True), (">", False), (">=", False)]
)
def test_compare(op: str, expected: bool) -> None:
    assert run_node(m.compare, {"a": 1.0, "b": 2.0}, {"op": op}).value is expected


def test_compare_unknown_op_lists_the_valid_ones() -> None:
    with pytest.raises(ParamValueError, match=r"'=>'.*>="):
        run_node(m.compare, {"a": 1.0, "b": 2.0}, {"op": "=>"})


def test_wrong_input_type_is_rejected_before_the_call() -> None:
    with pytest.raises(NodeInputError, match=r"'a'"):
        run_node(m.add, {"a": "1", "b": 2.0})


def test_boolean_nodes() -> None:
    assert run_node(logic.and_, {"a": True, "b": False}).value is False
    assert run_node(logic.or_, {"a": True, "b": False}).value is True
    assert run_node(logic.not_, {"x": True}).value is False
    assert run_node(logic.xor, {"a": True, "b": True}).value is False
    assert run_node(logic.xor, {"a": True, "b": False}).value is True
    assert run_node(logic.all_true, {"values": [True, True]}).value is True
    assert run_node(logic.all_true, {"values": []}).value is True
    assert run_node(logic.any_true, {"values": [False, True]}).value is True
    assert run_node(logic.any_true, {"values": []}).value is False


def test_equals_and_is_null() -> None:
    assert run_node(logic.equals, {"a": [1, {"k": 2}], "b": [1, {"k": 2}]}).value is True
    assert run_node(logic.equals, {"a": 1, "b": "1"}).value is False
    assert run_node(logic.is_null, {"value": None}).value is True
    assert run_node(logic.is_null, {"value": 0}).value is False


def test_node_ids_use_the_short_names() -> None:
    assert m.absolute.spec.id == "builtin/abs@1"
    assert m.sum_numbers.spec.id == "builtin/sum@1"
    assert logic.and_.spec.id == "builtin/and@1"
