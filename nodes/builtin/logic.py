"""Boolean operations and equality of arbitrary values."""

from __future__ import annotations

from typing import Any

from nodes import node


@node("and", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def and_(a: bool, b: bool) -> bool:
    """Logical AND of two booleans.

    Args:
        a: the first boolean.
        b: the second boolean.

    Returns:
        out: true when both ``a`` and ``b`` are true.
    """
    return a and b


@node("or", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def or_(a: bool, b: bool) -> bool:
    """Logical OR of two booleans.

    Args:
        a: the first boolean.
        b: the second boolean.

    Returns:
        out: true when ``a``, ``b`` or both are true.
    """
    return a or b


@node("not", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def not_(x: bool) -> bool:
    """Logical negation.

    Args:
        x: the boolean to negate.

    Returns:
        out: true when ``x`` is false, false when it is true.
    """
    return not x


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def xor(a: bool, b: bool) -> bool:
    """Exclusive OR: true when exactly one input is true.

    Args:
        a: the first boolean.
        b: the second boolean.

    Returns:
        out: true when ``a`` and ``b`` differ, false when both are true or both are false.
    """
    return a != b


@node("all", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def all_true(values: list[bool]) -> bool:
    """True when every element of the list is true (also for an empty list).

    Args:
        values: the booleans to check; may be empty.

    Returns:
        out: true when no element is false; true for an empty list.
    """
    return all(values)


@node("any", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def any_true(values: list[bool]) -> bool:
    """True when at least one element of the list is true (false for an empty list).

    Args:
        values: the booleans to check; may be empty.

    Returns:
        out: true when some element is true; false for an empty list.
    """
    return any(values)


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def equals(a: Any, b: Any) -> bool:
    """True when the two values are equal (Python ``==``: ``1 == 1.0``, lists and dicts compare by content).

    Args:
        a: the first value, of any type.
        b: the second value, of any type.

    Returns:
        out: ``a == b`` in Python terms: Ints and Floats compare by value, a Bool equals the Int 1 or 0
            (``true == 1``), lists and dicts compare element by element (dict key order does not matter),
            values of unrelated types are unequal, and NaN is unequal even to itself.
    """
    return bool(a == b)


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def is_null(value: Any) -> bool:
    """True when the value is null (``None``).

    Args:
        value: the value to test, of any type.

    Returns:
        out: true only for null; false for every other value, including 0, false, ``""`` and empty lists.
    """
    return value is None
