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
    """Add two numbers: ``a + b``.

    Args:
        a: the first number (Int or Float).
        b: the second number (Int or Float).

    Returns:
        out: the sum; an Int when both inputs are Ints, otherwise a Float.
    """
    return a + b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def subtract(a: Number, b: Number) -> Number:
    """Subtract ``b`` from ``a``.

    Args:
        a: the number to subtract from (Int or Float).
        b: the number to subtract (Int or Float).

    Returns:
        out: ``a - b``; an Int when both inputs are Ints, otherwise a Float.
    """
    return a - b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def multiply(a: Number, b: Number) -> Number:
    """Multiply two numbers: ``a * b``.

    Args:
        a: the first factor (Int or Float).
        b: the second factor (Int or Float).

    Returns:
        out: the product; an Int when both inputs are Ints, otherwise a Float.
    """
    return a * b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def divide(a: Number, b: Number) -> float:
    """Divide ``a`` by ``b``; fails when ``b`` is zero.

    Args:
        a: the dividend (Int or Float).
        b: the divisor (Int or Float); 0 (or 0.0) fails the node instead of producing an infinity.

    Returns:
        out: ``a / b`` as a Float, also when both inputs are Ints (``7 / 2`` is ``3.5``).
    """
    if b == 0:
        raise InputValueError(
            "builtin/divide@1: input port 'b' is 0, division by zero; guard the node with a gate or if_else"
        )
    return float(a / b)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def floor_divide(a: int, b: int) -> int:
    """Integer division rounding toward negative infinity: ``a // b``.

    Args:
        a: the dividend (Int).
        b: the divisor (Int); 0 fails the node.

    Returns:
        out: the largest Int not greater than ``a / b`` (``7 // 2`` is 3, ``-7 // 2`` is -4).
    """
    if b == 0:
        raise InputValueError("builtin/floor_divide@1: input port 'b' is 0, division by zero")
    return a // b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def modulo(a: int, b: int) -> int:
    """Remainder of the integer division ``a // b`` (sign follows ``b``, as in Python).

    Args:
        a: the dividend (Int).
        b: the divisor (Int); 0 fails the node.

    Returns:
        out: ``a - b * (a // b)``: 0 or of the sign of ``b``, and smaller than ``b`` in magnitude
            (``-7 % 3`` is 2, ``7 % -3`` is -2).
    """
    if b == 0:
        raise InputValueError("builtin/modulo@1: input port 'b' is 0, modulo by zero")
    return a % b


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def power(base: Number, exponent: Number) -> float:
    """Raise ``base`` to ``exponent``.

    Args:
        base: the base (Int or Float).
        exponent: the exponent (Int or Float); may be negative or fractional.

    Returns:
        out: ``base ** exponent`` as a Float. Fails when there is no finite real result: 0 to a negative
            power, a negative base with a fractional exponent, or a result too large for a Float.
    """
    try:
        return float(base**exponent)
    except (OverflowError, ZeroDivisionError, TypeError) as exc:
        raise InputValueError(
            f"builtin/power@1: {base!r} ** {exponent!r} is not a finite number ({exc})"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def negate(x: Number) -> Number:
    """Change the sign of a number.

    Args:
        x: the number (Int or Float).

    Returns:
        out: ``-x``, of the same kind (Int or Float) as ``x``.
    """
    return -x


@node("abs", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def absolute(x: Number) -> Number:
    """Absolute value of a number.

    Args:
        x: the number (Int or Float).

    Returns:
        out: ``x`` without its sign, of the same kind (Int or Float) as ``x``.
    """
    return abs(x)


@node("round", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def round_number(x: Number, *, digits: int = 0) -> float:
    """Round to ``digits`` decimal places (half to even, like Python's ``round``).

    Args:
        x: the number to round (Int or Float).
        digits: decimal places to keep (default 0); a negative value rounds to tens, hundreds, ...
            (``digits=-2`` turns 1234.5 into 1200.0).

    Returns:
        out: the rounded number as a Float. Ties go to the even neighbour (2.5 gives 2.0), and decimal
            fractions are rounded as stored in binary (2.675 to 2 digits gives 2.67).
    """
    return float(round(x, digits))


@node("min", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def minimum(a: Number, b: Number) -> Number:
    """The smaller of two numbers.

    Args:
        a: the first number (Int or Float).
        b: the second number (Int or Float).

    Returns:
        out: whichever of ``a`` and ``b`` is smaller, unchanged (an Int stays an Int); ``a`` when they are equal.
    """
    return min(a, b)


@node("max", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def maximum(a: Number, b: Number) -> Number:
    """The larger of two numbers.

    Args:
        a: the first number (Int or Float).
        b: the second number (Int or Float).

    Returns:
        out: whichever of ``a`` and ``b`` is larger, unchanged (an Int stays an Int); ``a`` when they are equal.
    """
    return max(a, b)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def clamp(x: Number, *, low: Number, high: Number) -> Number:
    """Limit ``x`` to the closed interval ``[low, high]``.

    Args:
        x: the number to limit (Int or Float).
        low: the lower bound, inclusive (required).
        high: the upper bound, inclusive (required); must be >= ``low``, else the node fails.

    Returns:
        out: ``low`` when ``x < low``, ``high`` when ``x > high``, else ``x`` unchanged.
    """
    if low > high:
        raise ParamValueError(
            f"builtin/clamp@1: param 'low' ({low}) is greater than 'high' ({high}); swap them"
        )
    return min(max(x, low), high)


@node("sum", plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def sum_numbers(values: list[Number]) -> Number:
    """Sum of a list of numbers: an Int when all are Ints (0 for an empty list), else an exact float sum.

    Args:
        values: the numbers to add (Int or Float); may be empty.

    Returns:
        out: the sum; an Int when every element is an Int (0 for an empty list), otherwise a Float
            computed without accumulated rounding error (ten times 0.1 sums to exactly 1.0).
    """
    if all(isinstance(v, int) for v in values):
        return sum(values)
    # fsum avoids the rounding drift of adding floats one by one (0.1 * 10 sums to exactly 1.0).
    return _pymath.fsum(values)


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def mean(values: list[Number]) -> float:
    """Arithmetic mean of a list of numbers; fails on an empty list.

    Args:
        values: the numbers to average (Int or Float); an empty list fails the node.

    Returns:
        out: the sum of ``values`` divided by their count, as a Float.
    """
    if not values:
        raise InputValueError(
            "builtin/mean@1: input port 'values' is an empty list, its mean is undefined; "
            "filter empty lists out upstream (e.g. with gate)"
        )
    return float(_pymath.fsum(values) / len(values))


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


@node(plugin="builtin", version="1.0.0", category="math", tags=("number",), cheap=True)
def compare(a: Number, b: Number, *, op: str = "==") -> bool:
    """Compare two numbers with ``op``, one of ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``.

    Args:
        a: the left operand (Int or Float).
        b: the right operand (Int or Float).
        op: the comparison, ``a <op> b`` (default ``==``); any other text fails the node. Ints and Floats
            compare by value (1 == 1.0); NaN is unequal to everything, itself included.

    Returns:
        out: true when ``a <op> b`` holds.
    """
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
