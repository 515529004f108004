"""The durable level of the result cache: one folder per cache key, on a local disk or in an object store.

Layout, under the cache's location (a directory or an `s3://bucket/prefix` URL, `nodes.objectstore`):
`<key[-2:]>/<key>/` holds `meta.json` (node type, the node types of a fused group's members, ports, files,
sizes) and one file per output port, Arrow IPC (`<token>-<i>.arrow`) for `pyarrow.Table` values and pickle
(`<token>-<i>.pkl`) for everything else. The data files get names of their own and are written first;
`meta.json` is written atomically last, so readers (other workers, other runs, a concurrent purge) see a whole
entry or none, on a local disk and on S3 alike. Removing an entry deletes its `meta.json` first.

The store is bounded by bytes; `evict()` removes the least recently used entries (by `meta.json`'s mtime, which
a read refreshes on a local disk; objects in a store keep their write time, so there it is the oldest written)
until it fits.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.durable.results import read_value, value_writer
from engine.secrets.atrest import AtRestCipher, dir_cipher
from engine.secrets.errors import SecretError
from nodes.objectstore import Location, location

_META = "meta.json"


@dataclass(frozen=True)
class DiskEntryInfo:
    """What `meta.json` records about one cached entry (`path`: its folder, relative to the cache's location)."""

    key: str
    type_id: str
    ports: tuple[str, ...]
    size: int
    accessed: float
    path: str
    #: The node types of the members of a fused group (empty for a single node).
    member_types: tuple[str, ...] = ()

    def has_type(self, type_id: str) -> bool:
        """Whether the entry holds results of node type `type_id` (itself, or a member of its fused group)."""
        return self.type_id == type_id or type_id in self.member_types


def _is_table(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"


class DiskStore:
    """A size-bounded folder of cached node outputs (see the module docstring for the layout)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | Location,
        max_bytes: int = 2 * 1024**3,
        *,
        cipher: AtRestCipher | None = None,
    ) -> None:
        #: Where the entries live (`nodes.objectstore`): a directory or an object store URL.
        self.where = location(root if isinstance(root, Location) else os.fspath(root), "RAYWEAVE_CACHE_URI")
        self.max_bytes = max_bytes
        #: Encrypts entries when the installation encrypts at rest (`engine.secrets.atrest`): given, or named
        #: by the location's marker, so every process opening it writes the same way.
        self.cipher = cipher if cipher is not None else dir_cipher(self.where)

    @property
    def root(self) -> str:
        """The cache's directory or URL."""
        return self.where.url

    @staticmethod
    def _dir(key: str) -> str:
        return f"{key[-2:]}/{key}"

    def get(self, key: str, ports: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The cached outputs under `key` (only `ports` when given), or None when absent or incomplete."""
        folder = self._dir(key)
        try:
            meta = json.loads(self.where.read_bytes(f"{folder}/{_META}"))
            wanted = tuple(meta["ports"]) if ports is None else ports
            files: dict[str, str] = meta["files"]
            if any(port not in files for port in wanted):
                return None
            out = {port: read_value(self.where, f"{folder}/{files[port]}", self.cipher) for port in wanted}
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, SecretError):
            return None  # absent, being purged, corrupt or unreadable here: a miss, never an error
        self.where.touch(f"{folder}/{_META}")  # the access time drives LRU eviction
        return out

    def contains(self, key: str) -> bool:
        """True when an entry exists under `key`."""
        return self.where.exists(f"{self._dir(key)}/{_META}")

    def put(
        self, key: str, type_id: str, outputs: Mapping[str, Any], *, member_types: Sequence[str] = ()
    ) -> None:
        """Write `outputs` under `key` atomically (an existing entry is left as it is). `member_types`: the
        node types of a fused group's members, so purging one of them finds the group's entries too."""
        folder = self._dir(key)
        if self.contains(key):
            return
        token = uuid.uuid4().hex[:12]
        files: dict[str, str] = {}
        size = 0
        for index, (port, value) in enumerate(outputs.items()):
            # Port names may hold '.' (fused groups) but never '/': file names use the port index.
            name = f"{token}-{index}.{'arrow' if _is_table(value) else 'pkl'}"
            size += self.where.write_with(f"{folder}/{name}", value_writer(value, self.cipher), atomic=False)
            files[port] = name
        meta: dict[str, Any] = {
            "key": key,
            "type_id": type_id,
            "ports": list(outputs),
            "files": files,
            "size": size,
        }
        if member_types:
            meta["member_types"] = sorted(set(member_types))
        self.where.write_bytes(f"{folder}/{_META}", json.dumps(meta).encode())

    def entries(self) -> Iterator[DiskEntryInfo]:
        """Every complete entry in the store (in no particular order)."""
        for relative, mtime in self.where.files():
            parts = relative.split("/")
            if len(parts) != 3 or parts[2] != _META:
                continue
            try:
                meta = json.loads(self.where.read_bytes(relative))
            except (OSError, ValueError):
                continue
            yield DiskEntryInfo(
                key=meta["key"],
                type_id=meta["type_id"],
                ports=tuple(meta["ports"]),
                size=int(meta.get("size", 0)),
                accessed=mtime,
                path="/".join(parts[:2]),
                member_types=tuple(meta.get("member_types", ())),
            )

    def purge(self, type_id: str | None = None) -> int:
        """Delete every entry (holding results of node type `type_id` when given: a fused group's entry goes when
        one of its members is of that type); returns how many were deleted."""
        count = 0
        for info in list(self.entries()):
            if type_id is None or info.has_type(type_id):
                self._remove(info.path)
                count += 1
        return count

    def evict(self) -> int:
        """Delete least recently used entries until the store fits `max_bytes`; returns how many went."""
        infos = sorted(self.entries(), key=lambda i: i.accessed)
        total = sum(i.size for i in infos)
        removed = 0
        for info in infos:
            if total <= self.max_bytes:
                break
            self._remove(info.path)
            total -= info.size
            removed += 1
        return removed

    def _remove(self, folder: str) -> None:
        # meta.json first: a concurrent reader then sees the whole entry or nothing.
        try:
            self.where.delete_file(f"{folder}/{_META}")
            self.where.delete_dir(folder)
        except OSError:
            return
