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
    """Number of elements in a list.

    Args:
        items: the list, with elements of any type.

    Returns:
        out: how many elements ``items`` has (nested lists count as one element each); 0 for an empty list.
    """
    return len(items)


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def get(items: list[T], *, index: int) -> T:
    """The element at ``index`` (negative counts from the end).

    Args:
        items: the list to take the element from.
        index: the position (required): 0 is the first element, -1 the last, -2 the one before it. An index
            outside ``[-len(items), len(items) - 1]`` fails the node naming the valid range.

    Returns:
        out: the element at ``index``.
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
    """The first element of a non-empty list.

    Args:
        items: the list; an empty list fails the node.

    Returns:
        out: the element at position 0, ``items[0]``.
    """
    if not items:
        raise InputValueError("builtin/first@1: input port 'items' is an empty list; it has no first element")
    return items[0]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def last(items: list[T]) -> T:
    """The last element of a non-empty list.

    Args:
        items: the list; an empty list fails the node.

    Returns:
        out: the element at the last position, ``items[-1]``.
    """
    if not items:
        raise InputValueError("builtin/last@1: input port 'items' is an empty list; it has no last element")
    return items[-1]


@node("slice", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def slice_list(
    items: list[T], *, start: int | None = None, stop: int | None = None, step: int = 1
) -> list[T]:
    """The sub-list ``items[start:stop:step]`` (Python slice semantics; null bounds mean the ends).

    Args:
        items: the list to take the sub-list from; it is not modified.
        start: first position, inclusive (default null: the beginning, or the end when ``step`` is
            negative); negative counts from the end.
        stop: end position, exclusive (default null: past the end, or before the beginning when ``step`` is
            negative); negative counts from the end.
        step: take every ``step``-th element (default 1); negative walks backwards; 0 fails the node.

    Returns:
        out: the selected elements, in slice order. Bounds beyond the list are clipped, never an error, so the
            result may be empty.
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
        items: the list; its elements (or their ``key`` fields) must be comparable with each other: numbers
            with numbers, strings with strings, lists element by element. Mixing them fails the node.
        reverse: sort in descending order (default false: ascending). Equal elements keep their input
            order either way.
        key: for a list of records, the field to sort by (default null: compare whole elements); an element
            without that field fails the node.

    Returns:
        out: a new sorted list with the same elements; the input list is not modified.
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
    """The list without duplicates, keeping the first occurrence of each element in order.

    Args:
        items: the list; elements may be of any type, including dicts and lists.

    Returns:
        out: the elements in input order, each equal value once (equality as in ``equals``, so ``1``,
            ``1.0`` and ``true`` are duplicates and the first of them is kept).
    """
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
    """Concatenate a list of lists into one list (one level).

    Args:
        items: the list of lists; empty inner lists contribute nothing.

    Returns:
        out: the elements of the inner lists, in order; lists nested deeper stay lists.
    """
    return [x for sub in items for x in sub]


@node("zip", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def zip_lists(a: list[A], b: list[B], *, strict: bool = True) -> list[tuple[A, B]]:
    """Pair the elements of two lists: ``[(a[0], b[0]), (a[1], b[1]), ...]``.

    Args:
        a: the first elements of the pairs.
        b: the second elements of the pairs.
        strict: fail when the lists differ in length (default true); when false, the extra elements of the
            longer list are dropped.

    Returns:
        out: one pair ``[a[i], b[i]]`` per position (a 2-element Tuple), as many as the shorter list has
            elements.
    """
    if strict and len(a) != len(b):
        raise InputValueError(
            f"builtin/zip@1: input ports 'a' ({len(a)} elements) and 'b' ({len(b)} elements) differ in "
            "length; pass lists of equal length or set param strict=false to truncate"
        )
    return list(zip(a, b, strict=False))


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def append(items: list[T], value: T) -> list[T]:
    """A new list with ``value`` added at the end.

    Args:
        items: the list; it is not modified.
        value: the element to add, of the lists' element type.

    Returns:
        out: the elements of ``items`` followed by ``value`` (one element longer).
    """
    return [*items, value]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def concat_lists(a: list[T], b: list[T]) -> list[T]:
    """A new list with the elements of ``a`` followed by those of ``b``.

    Args:
        a: the first list.
        b: the second list, with the same element type.

    Returns:
        out: the elements of ``a`` then those of ``b``; duplicates are kept.
    """
    return [*a, *b]


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def reverse(items: list[T]) -> list[T]:
    """The list in reverse order.

    Args:
        items: the list; it is not modified.

    Returns:
        out: a new list with the last element first.
    """
    return items[::-1]


@node("range", plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def range_list(*, stop: int, start: int = 0, step: int = 1) -> list[int]:
    """The integers ``start, start+step, ...`` below ``stop`` (Python ``range``); at most 10,000,000.

    Args:
        stop: the end, exclusive (required).
        start: the first number (default 0).
        step: the increment (default 1); negative counts down (the numbers then stay above ``stop``);
            0 fails the node.

    Returns:
        out: the numbers; empty when ``start`` is already at or past ``stop`` in the direction of ``step``.
            A range of more than 10,000,000 numbers fails the node.
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
        mapping: the dict to look ``key`` up in.
        key: the key to look up (required), matched exactly (case-sensitive).

    Returns:
        out: the value stored under ``key`` (a stored null is returned as null, not as a missing key).
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
        mapping: the dict to copy; it is not modified.
        value: the value to store, of the dict's value type.
        key: the key to set (required); an existing key is overwritten in place, a new one is added last.

    Returns:
        out: a copy of ``mapping`` with ``key`` mapped to ``value``.
    """
    return {**mapping, key: value}


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_merge(a: dict[str, V], b: dict[str, V]) -> dict[str, V]:
    """A new dict with the entries of ``a`` and ``b``; ``b`` wins on equal keys.

    Args:
        a: the base dict.
        b: the dict whose entries are added on top; its values replace those of ``a`` for keys in both.

    Returns:
        out: the merged dict (one level: nested dicts are replaced, not merged): the keys of ``a`` in their
            order, then the keys only ``b`` has.
    """
    return {**a, **b}


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_keys(mapping: dict[str, Any]) -> list[str]:
    """The keys of a dict, in insertion order.

    Args:
        mapping: the dict whose keys to list.

    Returns:
        out: its keys, in insertion order; an empty list for an empty dict.
    """
    return list(mapping)


@node(plugin="builtin", version="1.0.0", category="collections", tags=("list",), cheap=True)
def dict_values(mapping: dict[str, V]) -> list[V]:
    """The values of a dict, in insertion order.

    Args:
        mapping: the dict whose values to list.

    Returns:
        out: its values, in the order of their keys; an empty list for an empty dict.
    """
    return list(mapping.values())
