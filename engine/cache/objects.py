"""The Ray object store level of the result cache: ObjectRefs of node outputs kept alive, bounded in number.

Holding a ref keeps its value pinned in the object store, so a rerun in the same process can pass the cached
result to downstream tasks (or fetch it) without recomputing and without moving it through this process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RefEntry:
    """ObjectRefs (port -> ref) of one node's outputs and the node type they came from."""

    type_id: str
    refs: Mapping[str, Any]
    #: The node types of a fused group's members (empty for a single node).
    member_types: tuple[str, ...] = ()


class ObjectRefLRU:
    """An LRU of ObjectRef sets bounded by entry count; dropping an entry lets Ray free the objects."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, RefEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> RefEntry | None:
        """The entry for `key` (marked most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(
        self, key: str, type_id: str, refs: Mapping[str, Any], *, member_types: Sequence[str] = ()
    ) -> None:
        """Keep `refs` under `key`, evicting the least recently used beyond `max_entries` (`member_types`: the
        node types of a fused group's members)."""
        with self._lock:
            self._entries[key] = RefEntry(type_id, dict(refs), tuple(member_types))
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

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
                del self._entries[key]
            return len(keys)

    def __len__(self) -> int:
        return len(self._entries)

    def by_type(self) -> dict[str, int]:
        """Entries per node type."""
        out: dict[str, int] = {}
        with self._lock:
            for entry in self._entries.values():
                out[entry.type_id] = out.get(entry.type_id, 0) + 1
        return out
