"""Arithmetic, comparison and aggregation of numbers.

Numeric ports are typed ``Float``: an ``Int`` output wired into them is widened by the implicit
``Int -> Float`` coercion, so one node serves both. Integer-only operations (``floor_divide``, ``modulo``)
say so in their types.
"""

from __future__ import annotations

import math as _pymath

from nodes.builtin.errors import InputValueError, ParamValueError


def add(a: float, b: float) -> float:
    """Add two numbers: ``a + b``."""
    return float(a + b)


def subtract(a: float, b: float) -> float:
    """Subtract ``b`` from ``a``."""
    return float(a - b)


def multiply(a: float, b: float) -> float:
    """Multiply two numbers: ``a * b``."""
    return float(a * b)


def divide(a: float, b: float) -> float:
    """Divide ``a`` by ``b``; fails when ``b`` is zero."""
    if b == 0:
        raise InputValueError(
            "builtin/divide@1: input port 'b' is 0, division by zero; guard the node with a gate or if_else"
        )
    return float(a / b)


def floor_divide(a: int, b: int) -> int:
    """Integer division rounding toward negative infinity: ``a // b``."""
    if b == 0:
        raise InputValueError("builtin/floor_divide@1: input port 'b' is 0, division by zero")
    return a // b


def modulo(a: int, b: int) -> int:
    """Remainder of the integer division ``a // b`` (sign follows ``b``, as in Python)."""
    if b == 0:
        raise InputValueError("builtin/modulo@1: input port 'b' is 0, modulo by zero")
    return a % b


def power(base: float, exponent: float) -> float:
    """Raise ``base`` to ``exponent``."""
    try:
        return float(base**exponent)
    except (OverflowError, ZeroDivisionError) as exc:
        raise InputValueError(
            f"builtin/power@1: {base!r} ** {exponent!r} is not a finite number ({exc})"
        ) from exc


def negate(x: float) -> float:
    """Change the sign of a number."""
    return float(-x)


def absolute(x: float) -> float:
    """Absolute value of a number."""
    return float(abs(x))


def round_number(x: float, *, digits: int = 0) -> float:
    """Round to ``digits`` decimal places (half to even, like Python's ``round``)."""
    return float(round(x, digits))


def minimum(a: float, b: float) -> float:
    """The smaller of two numbers."""
    return float(min(a, b))


def maximum(a: float, b: float) -> float:
    """The larger of two numbers."""
    return float(max(a, b))


def clamp(x: float, *, low: float, high: float) -> float:
    """Limit ``x`` to the closed interval ``[low, high]``."""
    if low > high:
        raise ParamValueError(
            f"builtin/clamp@1: param 'low' ({low}) is greater than 'high' ({high}); swap them"
        )
    return float(min(max(x, low), high))


def sum_numbers(values: list[float]) -> float:
    """Sum of a list of numbers (0.0 for an empty list)."""
    return float(_pymath.fsum(values))


def mean(values: list[float]) -> float:
    """Arithmetic mean of a list of numbers; fails on an empty list."""
    if not values:
        raise InputValueError(
            "builtin/mean@1: input port 'values' is an empty list, its mean is undefined; "
            "filter empty lists out upstream (e.g. with gate)"
        )
    return float(_pymath.fsum(values) / len(values))


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def compare(a: float, b: float, *, op: str = "==") -> bool:
    """Compare two numbers with ``op``, one of ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``."""
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    raise ParamValueError(f"builtin/compare@1: param 'op' is {op!r}; use one of {', '.join(_COMPARISONS)}")
