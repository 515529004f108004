"""Boolean operations and equality of arbitrary values."""

from __future__ import annotations

from typing import Any


def and_(a: bool, b: bool) -> bool:
    """Logical AND of two booleans."""
    return a and b


def or_(a: bool, b: bool) -> bool:
    """Logical OR of two booleans."""
    return a or b


def not_(x: bool) -> bool:
    """Logical negation."""
    return not x


def xor(a: bool, b: bool) -> bool:
    """Exclusive OR: true when exactly one input is true."""
    return a != b


def all_true(values: list[bool]) -> bool:
    """True when every element of the list is true (also for an empty list)."""
    return all(values)


def any_true(values: list[bool]) -> bool:
    """True when at least one element of the list is true (false for an empty list)."""
    return any(values)


def equals(a: Any, b: Any) -> bool:
    """True when the two values are equal (Python ``==``: ``1 == 1.0``, lists and dicts compare by content)."""
    return bool(a == b)


def is_null(value: Any) -> bool:
    """True when the value is null (``None``)."""
    return value is None
