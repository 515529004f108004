"""Boolean operations and equality of arbitrary values."""

from __future__ import annotations

from typing import Any

from nodes import node


@node("and", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def and_(a: bool, b: bool) -> bool:
    """Logical AND of two booleans."""
    return a and b


@node("or", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def or_(a: bool, b: bool) -> bool:
    """Logical OR of two booleans."""
    return a or b


@node("not", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def not_(x: bool) -> bool:
    """Logical negation."""
    return not x


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def xor(a: bool, b: bool) -> bool:
    """Exclusive OR: true when exactly one input is true."""
    return a != b


@node("all", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def all_true(values: list[bool]) -> bool:
    """True when every element of the list is true (also for an empty list)."""
    return all(values)


@node("any", plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def any_true(values: list[bool]) -> bool:
    """True when at least one element of the list is true (false for an empty list)."""
    return any(values)


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def equals(a: Any, b: Any) -> bool:
    """True when the two values are equal (Python ``==``: ``1 == 1.0``, lists and dicts compare by content)."""
    return bool(a == b)


@node(plugin="builtin", version="1.0.0", category="logic", tags=("bool",), cheap=True)
def is_null(value: Any) -> bool:
    """True when the value is null (``None``)."""
    return value is None
