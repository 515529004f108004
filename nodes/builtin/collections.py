"""Lists and dicts: length, indexing, slicing, sorting, de-duplication, flattening, zip, range, dict ops.

Generic nodes use type variables, so ``first(items: List[T]) -> T`` wired to a ``List[Int]`` produces an
``Int`` once the compiler unifies ``T``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from nodes import node
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
V = TypeVar("V")


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def length(items: list[Any]) -> int:
    """Number of elements in a list."""
    return len(items)


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def get(items: list[T], *, index: int) -> T:
    """The element at ``index`` (negative counts from the end).

    Args:
        items: the list.
        index: the position; -1 is the last element.
    """
    try:
        return items[index]
    except IndexError:
        raise MissingKeyError(
            f"builtin/get@1: param 'index' is {index} but input port 'items' has {len(items)} elements; "
            f"use an index in [{-len(items)}, {len(items) - 1}]"
        ) from None


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def first(items: list[T]) -> T:
    """The first element of a non-empty list."""
    if not items:
        raise InputValueError("builtin/first@1: input port 'items' is an empty list; it has no first element")
    return items[0]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def last(items: list[T]) -> T:
    """The last element of a non-empty list."""
    if not items:
        raise InputValueError("builtin/last@1: input port 'items' is an empty list; it has no last element")
    return items[-1]


@node("slice", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def slice_list(
    items: list[T], *, start: int | None = None, stop: int | None = None, step: int = 1
) -> list[T]:
    """The sub-list ``items[start:stop:step]`` (Python slice semantics; null bounds mean the ends).

    Args:
        items: the list.
        start: first position (inclusive); null for the beginning.
        stop: last position (exclusive); null for the end.
        step: take every ``step``-th element; negative walks backwards.
    """
    if step == 0:
        raise ParamValueError("builtin/slice@1: param 'step' is 0; use a non-zero step")
    return items[start:stop:step]


def _sort_key(node: str, key: str | None) -> Any:
    if key is None:
        return None

    def by_field(item: Any) -> Any:
        try:
            return item[key]
        except (KeyError, TypeError, IndexError):
            raise MissingKeyError(
                f"builtin/{node}@1: param 'key' is {key!r} but element {item!r} has no such field; "
                "use a field every element has, or null to compare whole elements"
            ) from None

    return by_field


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def sort(items: list[T], *, reverse: bool = False, key: str | None = None) -> list[T]:
    """Sort a list (stable); ``key`` sorts records (dicts) by one of their fields.

    Args:
        items: the list; its elements must be comparable with each other.
        reverse: sort in descending order.
        key: for a list of records, the field to sort by.
    """
    try:
        return sorted(items, key=_sort_key("sort", key), reverse=reverse)
    except TypeError as exc:
        raise InputValueError(
            f"builtin/sort@1: elements of input port 'items' cannot be compared ({exc}); "
            "sort a list of one comparable type, or records by a 'key'"
        ) from exc


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def unique(items: list[T]) -> list[T]:
    """The list without duplicates, keeping the first occurrence of each element in order."""
    out: list[T] = []
    seen_hashable: set[Any] = set()
    for item in items:
        try:
            if item in seen_hashable:
                continue
            seen_hashable.add(item)
        except TypeError:
            # Unhashable elements (dicts, lists) fall back to a linear scan: correct, only slower.
            if item in out:
                continue
        out.append(item)
    return out


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def flatten(items: list[list[T]]) -> list[T]:
    """Concatenate a list of lists into one list (one level)."""
    return [x for sub in items for x in sub]


@node("zip", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def zip_lists(a: list[A], b: list[B], *, strict: bool = True) -> list[tuple[A, B]]:
    """Pair the elements of two lists: ``[(a[0], b[0]), (a[1], b[1]), ...]``.

    Args:
        a: the first elements of the pairs.
        b: the second elements of the pairs.
        strict: fail when the lists differ in length (otherwise the longer one is truncated).
    """
    if strict and len(a) != len(b):
        raise InputValueError(
            f"builtin/zip@1: input ports 'a' ({len(a)} elements) and 'b' ({len(b)} elements) differ in "
            "length; pass lists of equal length or set param strict=false to truncate"
        )
    return list(zip(a, b, strict=False))


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def append(items: list[T], value: T) -> list[T]:
    """A new list with ``value`` added at the end."""
    return [*items, value]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def concat_lists(a: list[T], b: list[T]) -> list[T]:
    """A new list with the elements of ``a`` followed by those of ``b``."""
    return [*a, *b]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def reverse(items: list[T]) -> list[T]:
    """The list in reverse order."""
    return items[::-1]


@node("range", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def range_list(*, stop: int, start: int = 0, step: int = 1) -> list[int]:
    """The integers ``start, start+step, ...`` below ``stop`` (Python ``range``); at most 10,000,000.

    Args:
        stop: the end (exclusive).
        start: the first number.
        step: the increment; negative counts down.
    """
    if step == 0:
        raise ParamValueError("builtin/range@1: param 'step' is 0; use a non-zero step")
    r = range(start, stop, step)
    if len(r) > 10_000_000:
        raise ParamValueError(
            f"builtin/range@1: range({start}, {stop}, {step}) has {len(r)} elements, more than 10,000,000; "
            "use a smaller range or read the numbers from a table"
        )
    return list(r)


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_get(mapping: dict[str, V], *, key: str) -> V:
    """The value stored under ``key``; fails naming the existing keys when it is missing.

    Args:
        mapping: the dict.
        key: the key to look up.
    """
    try:
        return mapping[key]
    except KeyError:
        raise MissingKeyError(
            f"builtin/dict_get@1: param 'key' {key!r} is not in input port 'mapping' "
            f"(keys: {sorted(mapping)[:20]}); use an existing key"
        ) from None


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_set(mapping: dict[str, V], value: V, *, key: str) -> dict[str, V]:
    """A new dict with ``key`` set to ``value`` (the input dict is not modified).

    Args:
        mapping: the dict.
        value: the value to store.
        key: the key to set.
    """
    return {**mapping, key: value}


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_merge(a: dict[str, V], b: dict[str, V]) -> dict[str, V]:
    """A new dict with the entries of ``a`` and ``b``; ``b`` wins on equal keys."""
    return {**a, **b}


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_keys(mapping: dict[str, Any]) -> list[str]:
    """The keys of a dict, in insertion order."""
    return list(mapping)


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_values(mapping: dict[str, V]) -> list[V]:
    """The values of a dict, in insertion order."""
    return list(mapping.values())
