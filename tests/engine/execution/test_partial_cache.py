"""A rerun answered partly from the cache: a cached node whose upstream is no longer needed must not link to it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.cache.result_cache import ResultCache
from engine.execution.cached import plan_with_cache
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.states import NodeStatus, RunStatus
from tests.engine.execution import sample_nodes as s


def diamond_tail(marker: Path) -> Workflow:
    """src -> mid -> out, where `out` also reads input `y`: changing `y` invalidates `out` only.

    `mid` is a workflow output too, so the Ray executor keeps (and caches) its result."""
    wf = Workflow("partial-cache")
    x = wf.input("x", "Int")
    y = wf.input("y", "Int")
    src = wf.add("src", s.counted, x=x, params={"marker": str(marker)})
    mid = wf.add("mid", s.double, x=src)
    wf.output("mid", mid)
    wf.output("out", wf.add("out", s.add, a=mid, b=y))
    return wf


def check_partial_rerun(executor: Any, settings: Settings, marker: Path) -> None:
    cache = ResultCache.for_settings(settings)
    wf = diamond_tail(marker)
    first = engine.run(wf, {"x": 5, "y": 1}, settings=settings, executor=executor, cache=cache)
    assert first.status is RunStatus.SUCCEEDED and first.outputs == {"mid": 10, "out": 11}

    again = engine.run(wf, {"x": 5, "y": 2}, settings=settings, executor=executor, cache=cache, timeout=60)

    assert again.status is RunStatus.SUCCEEDED, again.nodes
    assert again.outputs == {"mid": 10, "out": 12}
    assert again.nodes["mid"].status is NodeStatus.CACHED
    assert again.nodes["out"].status is NodeStatus.SUCCEEDED
    assert "src" not in again.nodes  # not needed: mid's result came from the cache
    assert marker.read_text().count("run") == 1


def test_plan_with_cache_drops_links_of_a_hit_to_pruned_nodes(settings: Settings, tmp_path: Path) -> None:
    from engine.compile import compile_workflow, compute_cache_keys
    from engine.compile.plan import NodeRef

    cache = ResultCache.for_settings(settings)
    wf = diamond_tail(tmp_path / "marker")
    engine.run(wf, {"x": 5, "y": 1}, settings=settings, executor="local", cache=cache)
    plan = compile_workflow(wf, None)
    plan = plan.with_cache_keys(compute_cache_keys(plan, {"x": 5, "y": 2}))

    todo, hits = plan_with_cache(plan, cache)

    assert [p.id for p in todo.nodes] == ["mid", "out"] and set(hits) == {"mid"}
    ids = {p.id for p in todo.nodes}
    refs = [b for p in todo.nodes for b in p.inputs.values() if isinstance(b, NodeRef)]
    assert all(ref.node in ids for ref in refs), refs
    assert todo.downstream() == {"mid": ("out",), "out": ()}


def test_partial_cache_hit_in_process(settings: Settings, tmp_path: Path) -> None:
    check_partial_rerun("local", settings, tmp_path / "marker")


@pytest.mark.usefixtures("ray_session")
def test_partial_cache_hit_on_ray(settings: Settings, tmp_path: Path) -> None:
    check_partial_rerun(RayExecutor(), settings, tmp_path / f"marker-{uuid.uuid4().hex}")
