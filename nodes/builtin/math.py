"""Arithmetic, comparison and aggregation of numbers.

Numeric inputs are typed ``Number`` (Int or Float), so ints and floats are accepted without coercion.
Operations that keep the kind of number (``add`` of two Ints is an Int) output ``Number``, which flows into
``Float`` ports through the implicit ``Number -> Float`` coercion; those that always produce a fraction
(``divide``, ``mean``, ``power``, ``round``) output ``Float``. Integer-only operations (``floor_divide``,
``modulo``) say so in their types.
"""

from __future__ import annotations

import math as _pymath

from nodes import node
from nodes.builtin.errors import InputValueError, ParamValueError
from nodes.builtin.porttypes import Number


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def add(a: Number, b: Number) -> Number:
    """Add two numbers: ``a + b``."""
    return a + b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def subtract(a: Number, b: Number) -> Number:
    """Subtract ``b`` from ``a``."""
    return a - b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def multiply(a: Number, b: Number) -> Number:
    """Multiply two numbers: ``a * b``."""
    return a * b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def divide(a: Number, b: Number) -> float:
    """Divide ``a`` by ``b``; fails when ``b`` is zero."""
    if b == 0:
        raise InputValueError(
            "builtin/divide@1: input port 'b' is 0, division by zero; guard the node with a gate or if_else"
        )
    return float(a / b)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def floor_divide(a: int, b: int) -> int:
    """Integer division rounding toward negative infinity: ``a // b``."""
    if b == 0:
        raise InputValueError("builtin/floor_divide@1: input port 'b' is 0, division by zero")
    return a // b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def modulo(a: int, b: int) -> int:
    """Remainder of the integer division ``a // b`` (sign follows ``b``, as in Python)."""
    if b == 0:
        raise InputValueError("builtin/modulo@1: input port 'b' is 0, modulo by zero")
    return a % b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def power(base: Number, exponent: Number) -> float:
    """Raise ``base`` to ``exponent``."""
    try:
        return float(base**exponent)
    except (OverflowError, ZeroDivisionError, TypeError) as exc:
        raise InputValueError(
            f"builtin/power@1: {base!r} ** {exponent!r} is not a finite number ({exc})"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def negate(x: Number) -> Number:
    """Change the sign of a number."""
    return -x


@node("abs", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def absolute(x: Number) -> Number:
    """Absolute value of a number."""
    return abs(x)


@node("round", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def round_number(x: Number, *, digits: int = 0) -> float:
    """Round to ``digits`` decimal places (half to even, like Python's ``round``)."""
    return float(round(x, digits))


@node("min", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def minimum(a: Number, b: Number) -> Number:
    """The smaller of two numbers."""
    return min(a, b)


@node("max", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def maximum(a: Number, b: Number) -> Number:
    """The larger of two numbers."""
    return max(a, b)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def clamp(x: Number, *, low: Number, high: Number) -> Number:
    """Limit ``x`` to the closed interval ``[low, high]``."""
    if low > high:
        raise ParamValueError(
            f"builtin/clamp@1: param 'low' ({low}) is greater than 'high' ({high}); swap them"
        )
    return min(max(x, low), high)


@node("sum", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def sum_numbers(values: list[Number]) -> Number:
    """Sum of a list of numbers: an Int when all are Ints (0 for an empty list), else an exact float sum."""
    if all(isinstance(v, int) for v in values):
        return sum(values)
    # fsum avoids the rounding drift of adding floats one by one (0.1 * 10 sums to exactly 1.0).
    return _pymath.fsum(values)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def mean(values: list[Number]) -> float:
    """Arithmetic mean of a list of numbers; fails on an empty list."""
    if not values:
        raise InputValueError(
            "builtin/mean@1: input port 'values' is an empty list, its mean is undefined; "
            "filter empty lists out upstream (e.g. with gate)"
        )
    return float(_pymath.fsum(values) / len(values))


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def compare(a: Number, b: Number, *, op: str = "==") -> bool:
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
