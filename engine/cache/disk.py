"""The durable level of the result cache: one directory per cache key under the cache directory.

Layout: `<root>/<key[-2:]>/<key>/` holds `meta.json` (node type, the node types of a fused group's members,
ports, sizes) and one file per output port,
Arrow IPC (`<port>.arrow`) for `pyarrow.Table` values and pickle (`<port>.pkl`) for everything else. Entries
are written to a temporary directory and renamed into place, so readers (other workers, other runs, a
concurrent purge) never see half an entry. The store is bounded by bytes; `evict()` removes the least
recently used entries (by the access time recorded in `meta.json`'s mtime) until it fits.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.secrets.atrest import MAGIC, AtRestCipher, dir_cipher, is_encrypted, read_stored
from engine.secrets.codec import decoded as _decoded
from engine.secrets.codec import encoded as _encoded
from engine.secrets.errors import SecretError

_META = "meta.json"


@dataclass(frozen=True)
class DiskEntryInfo:
    """What `meta.json` records about one cached entry."""

    key: str
    type_id: str
    ports: tuple[str, ...]
    size: int
    accessed: float
    path: Path
    #: The node types of the members of a fused group (empty for a single node).
    member_types: tuple[str, ...] = ()

    def has_type(self, type_id: str) -> bool:
        """Whether the entry holds results of node type `type_id` (itself, or a member of its fused group)."""
        return self.type_id == type_id or type_id in self.member_types


def _is_table(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"


class DiskStore:
    """A size-bounded directory of cached node outputs (see the module docstring for the layout)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_bytes: int = 2 * 1024**3,
        *,
        cipher: AtRestCipher | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        #: Encrypts entries when the installation encrypts at rest (`engine.secrets.atrest`): given, or named
        #: by the directory's marker, so every process opening the directory writes the same way.
        self.cipher = cipher if cipher is not None else dir_cipher(self.root)

    def _dir(self, key: str) -> Path:
        return self.root / key[-2:] / key

    def get(self, key: str, ports: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The cached outputs under `key` (only `ports` when given), or None when absent or incomplete."""
        path = self._dir(key)
        try:
            meta = json.loads((path / _META).read_text())
            wanted = tuple(meta["ports"]) if ports is None else ports
            files: dict[str, str] = meta["files"]
            if any(port not in files for port in wanted):
                return None
            out = {port: self._read(path / files[port]) for port in wanted}
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, SecretError):
            return None  # absent, being purged, corrupt or unreadable here: a miss, never an error
        with contextlib.suppress(OSError):
            os.utime(path / _META)  # the access time drives LRU eviction
        return out

    def contains(self, key: str) -> bool:
        """True when an entry exists under `key`."""
        return (self._dir(key) / _META).exists()

    def _read(self, file: Path) -> Any:
        with file.open("rb") as f:
            head = f.read(len(MAGIC))
        if is_encrypted(head):
            return _decoded(read_stored(file.read_bytes(), self.cipher), table=file.suffix == ".arrow")
        if file.suffix == ".arrow":
            import pyarrow as pa

            with pa.memory_map(str(file)) as source:
                return pa.ipc.open_file(source).read_all()
        with file.open("rb") as f:
            return pickle.load(f)

    def put(
        self, key: str, type_id: str, outputs: Mapping[str, Any], *, member_types: Sequence[str] = ()
    ) -> None:
        """Write `outputs` under `key` atomically (an existing entry is left as it is). `member_types`: the
        node types of a fused group's members, so purging one of them finds the group's entries too."""
        final = self._dir(key)
        if (final / _META).exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            files: dict[str, str] = {}
            size = 0
            for index, (port, value) in enumerate(outputs.items()):
                # Port names may hold '.' (fused groups) but never '/': file names use the port index.
                if self.cipher is not None:
                    name = f"{index}.{'arrow' if _is_table(value) else 'pkl'}"
                    (tmp / name).write_bytes(self.cipher.encrypt(_encoded(value)))
                elif _is_table(value):
                    import pyarrow as pa

                    name = f"{index}.arrow"
                    with pa.OSFile(str(tmp / name), "wb") as sink, pa.ipc.new_file(sink, value.schema) as w:
                        w.write_table(value)
                else:
                    name = f"{index}.pkl"
                    with (tmp / name).open("wb") as f:
                        pickle.dump(value, f, protocol=5)
                files[port] = name
                size += (tmp / name).stat().st_size
            meta = {"key": key, "type_id": type_id, "ports": list(outputs), "files": files, "size": size}
            if member_types:
                meta["member_types"] = sorted(set(member_types))
            (tmp / _META).write_text(json.dumps(meta))
            try:
                tmp.rename(final)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another writer won the race: same key, same content
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def entries(self) -> Iterator[DiskEntryInfo]:
        """Every complete entry in the store (in no particular order)."""
        if not self.root.exists():
            return
        for meta_path in self.root.glob(f"*/*/{_META}"):
            try:
                meta = json.loads(meta_path.read_text())
                accessed = meta_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            yield DiskEntryInfo(
                key=meta["key"],
                type_id=meta["type_id"],
                ports=tuple(meta["ports"]),
                size=int(meta.get("size", 0)),
                accessed=accessed,
                path=meta_path.parent,
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

    @staticmethod
    def _remove(path: Path) -> None:
        # Rename first so that a concurrent reader sees either the whole entry or nothing.
        doomed = path.with_name(f".del.{path.name}.{time.monotonic_ns()}")
        try:
            path.rename(doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)
