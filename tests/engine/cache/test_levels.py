"""The cache levels on their own: disk store, memory LRU, object-ref LRU, content hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from engine.cache.disk import DiskStore
from engine.cache.keys import content_hash, dynamic_cache_key
from engine.cache.memory import MemoryLRU
from engine.cache.objects import ObjectRefLRU
from engine.cache.result_cache import CacheConfig, ResultCache


def test_disk_roundtrip_of_tables_and_python_values(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    store.put("k1", "t/load@1", {"table": table, "meta": {"rows": 3}})
    got = store.get("k1")
    assert got is not None
    assert got["table"].equals(table) and got["meta"] == {"rows": 3}
    assert any(p.suffix == ".arrow" for p in tmp_path.rglob("*"))
    assert store.get("k1", ("meta",)) == {"meta": {"rows": 3}}
    assert store.get("k1", ("missing",)) is None
    assert store.get("nope") is None


def test_disk_evicts_least_recently_used_beyond_its_bound(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=10_000)
    for age, key in enumerate(("old", "mid", "new"), start=1):
        store.put(key, "t/n@1", {"out": b"x" * 4000})
        meta = next(p for p in tmp_path.rglob("meta.json") if p.parent.name == key)
        os.utime(meta, (age, age))  # pretend they were written long ago, in this order
    assert store.get("old") is not None  # a read makes "old" the most recently used
    assert store.evict() == 1
    assert store.get("mid") is None and store.get("old") is not None and store.get("new") is not None


def test_disk_purge_by_node_type(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.put("a", "t/one@1", {"out": 1})
    store.put("b", "t/two@1", {"out": 2})
    assert store.purge("t/one@1") == 1
    assert store.get("a") is None and store.get("b") == {"out": 2}
    assert store.purge() == 1 and list(store.entries()) == []


def test_memory_lru_is_bounded_by_entries_and_bytes() -> None:
    lru = MemoryLRU(max_bytes=10_000, max_entries=2)
    lru.put("a", "t", {"out": 1})
    lru.put("b", "t", {"out": 2})
    lru.get("a")
    lru.put("c", "t", {"out": 3})
    assert lru.get("b") is None and lru.get("a") is not None and len(lru) == 2
    lru.put("big", "t", {"out": b"x" * 20_000})  # larger than the whole level: not stored
    assert lru.get("big") is None


def test_object_ref_lru_bound() -> None:
    refs = ObjectRefLRU(max_entries=1)
    refs.put("a", "t", {"out": "ref-a"})
    refs.put("b", "t", {"out": "ref-b"})
    assert refs.get("a") is None and refs.get("b") is not None


def test_content_hash_is_stable_and_content_based() -> None:
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash([1, 2]) != content_hash([2, 1])
    t1 = pa.table({"x": [1, 2]})
    assert content_hash(t1) == content_hash(pa.table({"x": [1, 2]}))
    assert content_hash(t1) != content_hash(pa.table({"x": [1, 3]}))
    k = dynamic_cache_key("t/n@1", "v1", {"p": 1}, {"x": 1})
    assert k == dynamic_cache_key("t/n@1", "v1", {"p": 1}, {"x": 1})
    assert k != dynamic_cache_key("t/n@1", "v2", {"p": 1}, {"x": 1})
    alice = dynamic_cache_key("t/n@1", "v1", {"p": 1}, {"x": 1}, "owner:alice")
    assert alice not in (k, dynamic_cache_key("t/n@1", "v1", {"p": 1}, {"x": 1}, "owner:bob"))
    assert alice == dynamic_cache_key("t/n@1", "v1", {"p": 1}, {"x": 1}, "owner:alice")


def test_result_cache_promotes_disk_hits_to_memory(tmp_path: Path) -> None:
    cache = ResultCache(CacheConfig(disk_dir=tmp_path))
    cache.put_values("k", "t/n@1", {"out": 41})
    fresh = ResultCache(CacheConfig(disk_dir=tmp_path))
    hit = fresh.lookup("k", ("out",), type_id="t/n@1")
    assert hit is not None and hit.level == "disk" and hit.values == {"out": 41}
    again = fresh.lookup("k", ("out",))
    assert again is not None and again.level == "memory"
    stats = fresh.stats()
    assert stats["disk"].entries == 1 and stats["disk"].by_type["t/n@1"][0] == 1
    assert fresh.purge("t/n@1")["disk"] == 1
    assert fresh.lookup("k", ("out",)) is None


def test_a_lookup_without_refs_skips_the_object_level_for_the_disk(tmp_path: Path) -> None:
    cache = ResultCache(CacheConfig(disk_dir=tmp_path))
    cache.disk.put("k", "t/n@1", {"out": 41})  # type: ignore[union-attr]
    marker = object()  # stands for an ObjectRef: the level only keeps what it is given
    cache.put_refs("k", "t/n@1", {"out": marker})
    with_refs = cache.lookup("k", ("out",))
    assert with_refs is not None and with_refs.level == "object_store" and with_refs.refs == {"out": marker}
    without = cache.lookup("k", ("out",), refs=False)
    assert without is not None and without.level == "disk" and without.values == {"out": 41}


def test_purging_a_node_type_drops_fused_groups_with_a_member_of_it(tmp_path: Path) -> None:
    cache = ResultCache(CacheConfig(disk_dir=tmp_path))
    members = ("builtin/add@1", "builtin/negate@1")
    cache.put_values("k1", "rayweave/fused@1", {"n.out": 1}, member_types=members)
    cache.put_refs("k1", "rayweave/fused@1", {"n.out": object()}, member_types=members)
    cache.put_values("k2", "builtin/abs@1", {"out": 2})
    [fused] = [e for e in cache.disk.entries() if e.key == "k1"] if cache.disk else []
    assert fused.member_types == members and fused.has_type("builtin/negate@1")
    assert cache.purge("builtin/negate@1") == {"memory": 1, "object_store": 1, "disk": 1}
    assert cache.lookup("k1", ("n.out",)) is None and cache.lookup("k2", ("out",)) is not None
