"""The in-process level of the result cache: a size-bounded LRU of output values."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def approx_size(value: Any) -> int:
    """A cheap estimate of the bytes `value` holds (exact for Arrow tables and NumPy arrays)."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, str | bytes | bytearray):
        return len(value) + 50
    if isinstance(value, list | tuple | set | frozenset):
        return sys.getsizeof(value) + sum(approx_size(v) for v in list(value)[:1000])
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(
            approx_size(k) + approx_size(v) for k, v in list(value.items())[:1000]
        )
    return sys.getsizeof(value)


@dataclass(frozen=True)
class MemoryEntry:
    """Cached outputs of one node (port -> value) and the node type they came from."""

    type_id: str
    outputs: Mapping[str, Any]
    size: int
    #: The node types of a fused group's members (empty for a single node).
    member_types: tuple[str, ...] = ()


class MemoryLRU:
    """A thread-safe LRU bounded by entry count and approximate bytes; the least recently used go first."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, max_entries: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> MemoryEntry | None:
        """The entry for `key` (marked most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(
        self, key: str, type_id: str, outputs: Mapping[str, Any], *, member_types: Sequence[str] = ()
    ) -> None:
        """Store `outputs` under `key`, evicting the least recently used entries beyond the bounds
        (`member_types`: the node types of a fused group's members)."""
        size = sum(approx_size(v) for v in outputs.values())
        if size > self.max_bytes:
            return  # one value bigger than the whole level would only flush everything else
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = MemoryEntry(type_id, dict(outputs), size, tuple(member_types))
            self._bytes += size
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def purge(self, type_id: str | None = None) -> int:
        """Drop every entry (of node type `type_id`, or of a fused group with a member of it, when given);
        returns how many were dropped."""
        with self._lock:
            keys = [
                k
                for k, e in self._entries.items()
                if type_id is None or type_id == e.type_id or type_id in e.member_types
            ]
            for key in keys:
                self._bytes -= self._entries.pop(key).size
            return len(keys)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held."""
        return self._bytes

    def by_type(self) -> dict[str, tuple[int, int]]:
        """Entries and bytes per node type."""
        out: dict[str, tuple[int, int]] = {}
        with self._lock:
            for entry in self._entries.values():
                n, b = out.get(entry.type_id, (0, 0))
                out[entry.type_id] = (n + 1, b + entry.size)
        return out
