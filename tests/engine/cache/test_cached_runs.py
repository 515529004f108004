"""Caching seen from a run: reruns answered from the cache, keys that change, non-deterministic upstreams."""

from __future__ import annotations

import time
from pathlib import Path

import engine
from cluster.settings import Settings
from engine.cache.result_cache import CacheConfig, ResultCache
from engine.execution.events import Event
from engine.workflow import Workflow
from nodes.states import EventType, NodeStatus
from tests.engine.execution import sample_nodes as s


def counted_chain(marker: Path, scale: int = 2) -> Workflow:
    wf = Workflow("cached")
    x = wf.input("x", "Int")
    # 20 ms: intermediate results go to the durable cache only when recomputing them costs something.
    a = wf.add("a", s.counted, x=x, params={"marker": str(marker), "seconds": 0.02})
    wf.output("out", wf.add("b", s.add, a=a, b=scale))
    return wf


def runs(marker: Path, word: str = "run") -> int:
    return marker.read_text().count(word) if marker.exists() else 0


def test_rerun_is_answered_from_the_cache(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    first = engine.run(counted_chain(marker), {"x": 1}, settings=settings, executor="local")
    assert first.outputs == {"out": 3} and runs(marker) == 1
    seen: list[Event] = []
    again = engine.run(
        counted_chain(marker), {"x": 1}, settings=settings, executor="local", on_event=seen.append
    )
    assert again.outputs == {"out": 3} and runs(marker) == 1
    assert again.nodes["b"].status is NodeStatus.CACHED
    assert next(e for e in seen if e.type is EventType.NODE_CACHED).payload["level"] == "disk"


def test_fully_cached_rerun_is_fast(settings: Settings, tmp_path: Path) -> None:
    cache = ResultCache.for_settings(settings)
    wf = counted_chain(tmp_path / "m")
    engine.run(wf, {"x": 1}, settings=settings, executor="local", cache=cache)
    started = time.perf_counter()
    result = engine.run(wf, {"x": 1}, settings=settings, executor="local", cache=cache)
    assert time.perf_counter() - started < 0.05
    assert result.outputs == {"out": 3}


def test_changed_inputs_or_params_miss_the_cache(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    engine.run(counted_chain(marker), {"x": 1}, settings=settings, executor="local")
    engine.run(counted_chain(marker), {"x": 2}, settings=settings, executor="local")
    assert runs(marker) == 2
    # A different param downstream reruns only the downstream node: "a" is still cached.
    result = engine.run(counted_chain(marker, scale=5), {"x": 2}, settings=settings, executor="local")
    assert result.outputs == {"out": 7} and runs(marker) == 2
    assert result.nodes["a"].status is NodeStatus.CACHED


def test_tiny_intermediate_results_are_not_written_to_disk(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    wf = Workflow("tiny")
    a = wf.add("a", s.counted, x=1, params={"marker": str(marker)})
    wf.output("out", wf.add("b", s.add, a=a, b=1))
    engine.run(wf, None, settings=settings, executor="local")
    types = ResultCache.for_settings(settings).stats()["disk"].by_type
    assert "t/add@1" in types  # the output node is always kept
    assert "t/counted@1" not in types  # a sub-millisecond intermediate is cheaper to recompute


def test_cache_off_runs_everything(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    for _ in range(2):
        engine.run(counted_chain(marker), {"x": 1}, settings=settings, executor="local", cache=False)
    assert runs(marker) == 2


def test_downstream_of_non_deterministic_node_is_keyed_by_content(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    wf = Workflow("nondet")
    got = wf.add("got", s.fetch, x=3, params={"marker": str(marker)})
    wf.output("out", wf.add("use", s.counted, x=got, params={"marker": str(marker)}))
    for _ in range(2):
        result = engine.run(wf, None, settings=settings, executor="local")
        assert result.outputs == {"out": 3}
    assert runs(marker, "fetch") == 2  # never cached
    assert runs(marker, "run") == 1  # same fetched value: the second run found "use" by content
    assert result.nodes["use"].status is NodeStatus.CACHED


def test_purge_by_node_type(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    cache = ResultCache(CacheConfig(disk_dir=tmp_path / "cache"))
    engine.run(counted_chain(marker), {"x": 1}, settings=settings, executor="local", cache=cache)
    assert cache.stats()["disk"].entries >= 1
    cache.purge("t/add@1")
    result = engine.run(counted_chain(marker), {"x": 1}, settings=settings, executor="local", cache=cache)
    assert result.nodes["b"].status is NodeStatus.SUCCEEDED
