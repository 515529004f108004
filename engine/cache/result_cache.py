"""The result cache: the three levels behind one object, consulted before a run and filled during it.

Lookups go memory -> object store -> disk, and a hit at a slower level is promoted to the faster ones.
Workers write node results to the disk level themselves (the data never passes through the caller); the
caller records the object refs of a finished run and the output values it fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cache.disk import DiskStore
from engine.cache.memory import MemoryLRU
from engine.cache.objects import ObjectRefLRU
from nodes.objectstore import Location, S3Options, location

if TYPE_CHECKING:
    from cluster.settings import Settings


@dataclass(frozen=True)
class CacheHit:
    """A cache hit: the level it came from and either values or object refs (port -> ...)."""

    level: str
    values: Mapping[str, Any] = field(default_factory=dict)
    refs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheConfig:
    """Bounds of each level and where the durable level lives (None: no durable level)."""

    disk_dir: Path | Location | None = None
    memory_bytes: int = 256 * 1024 * 1024
    memory_entries: int = 100_000
    object_entries: int = 10_000
    disk_bytes: int = 2 * 1024**3


@dataclass(frozen=True)
class LevelStats:
    """Entries and bytes held by one level, in total and per node type."""

    entries: int
    bytes: int
    by_type: Mapping[str, tuple[int, int]]


class ResultCache:
    """Node outputs by cache key, at three levels (see the module docstring); safe to share between runs."""

    def __init__(self, config: CacheConfig | None = None) -> None:
        self.config = config or CacheConfig()
        self.memory = MemoryLRU(self.config.memory_bytes, self.config.memory_entries)
        self.objects = ObjectRefLRU(self.config.object_entries)
        self.disk = DiskStore(self.config.disk_dir, self.config.disk_bytes) if self.config.disk_dir else None

    @classmethod
    def for_settings(cls, settings: Settings) -> ResultCache:
        """A cache whose durable level is at `settings.resolved_cache_uri` (a directory, or an s3:// URL
        reached with the `s3_*` settings), encrypted when `encrypt_at_rest` is on (the location is marked so:
        `engine.secrets.atrest.mark_dir`)."""
        from engine.secrets.atrest import cipher_for, mark_dir

        where = location(settings.resolved_cache_uri, "RAYWEAVE_CACHE_URI", S3Options.of(settings))
        where.check()
        mark_dir(where, cipher_for(settings))
        return cls(CacheConfig(disk_dir=where))

    @property
    def disk_dir(self) -> Location | None:
        """Where the durable level lives (what workers are told: they open it themselves), or None."""
        return self.disk.where if self.disk is not None else None

    def lookup(
        self, key: str, ports: tuple[str, ...], *, type_id: str = "", refs: bool = True
    ) -> CacheHit | None:
        """The outputs `ports` of the node keyed `key`, from the fastest level that has all of them.

        `refs=False` skips the object-store level (for callers that cannot use refs this process owns)."""
        entry = self.memory.get(key)
        if entry is not None and all(p in entry.outputs for p in ports):
            return CacheHit("memory", values={p: entry.outputs[p] for p in ports})
        ref_entry = self.objects.get(key) if refs else None
        if ref_entry is not None and all(p in ref_entry.refs for p in ports):
            return CacheHit("object_store", refs={p: ref_entry.refs[p] for p in ports})
        if self.disk is not None:
            values = self.disk.get(key, ports)
            if values is not None:
                self.memory.put(key, type_id, values)
                return CacheHit("disk", values=values)
        return None

    def put_values(
        self,
        key: str,
        type_id: str,
        outputs: Mapping[str, Any],
        *,
        durable: bool = True,
        member_types: Sequence[str] = (),
    ) -> None:
        """Record output values in memory (and on disk when `durable`); `member_types`: the node types of a
        fused group's members, so that purging one of those types drops the group's entry too."""
        self.memory.put(key, type_id, outputs, member_types=member_types)
        if durable and self.disk is not None:
            self.disk.put(key, type_id, outputs, member_types=member_types)

    def put_refs(
        self, key: str, type_id: str, refs: Mapping[str, Any], *, member_types: Sequence[str] = ()
    ) -> None:
        """Record object refs of a node's outputs (they stay pinned while the entry lives)."""
        self.objects.put(key, type_id, refs, member_types=member_types)

    def purge(self, type_id: str | None = None) -> dict[str, int]:
        """Drop entries at every level (only those holding results of node type `type_id` when given, fused
        groups with a member of that type included); counts per level."""
        return {
            "memory": self.memory.purge(type_id),
            "object_store": self.objects.purge(type_id),
            "disk": self.disk.purge(type_id) if self.disk is not None else 0,
        }

    def evict(self) -> None:
        """Bring the durable level back under its byte bound (workers only add; the owner trims)."""
        if self.disk is not None:
            self.disk.evict()

    def stats(self) -> dict[str, LevelStats]:
        """Entries and bytes per level and node type."""
        mem = self.memory.by_type()
        objs = self.objects.by_type()
        out = {
            "memory": LevelStats(len(self.memory), self.memory.nbytes, mem),
            "object_store": LevelStats(len(self.objects), 0, {k: (v, 0) for k, v in objs.items()}),
        }
        if self.disk is not None:
            per: dict[str, tuple[int, int]] = {}
            for info in self.disk.entries():
                n, b = per.get(info.type_id, (0, 0))
                per[info.type_id] = (n + 1, b + info.size)
            out["disk"] = LevelStats(sum(v[0] for v in per.values()), sum(v[1] for v in per.values()), per)
        return out
