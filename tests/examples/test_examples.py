"""Every example in examples/ runs, and gives the result its docstring promises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import engine
from cluster.settings import Settings
from engine.execution.events import Event
from engine.execution.ray.executor import RayExecutor
from nodes.states import EventType, NodeStatus, RunStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_runs_jobs_in_parallel_on_ray(ray_session: object, settings: Settings) -> None:
    from examples import quickstart

    seen: list[Event] = []
    began = time.monotonic()
    result = engine.run(
        quickstart.workflow,
        quickstart.INPUTS,
        settings=settings,
        executor=RayExecutor(),
        on_event=seen.append,
    )
    elapsed = time.monotonic() - began
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"report": {"total": 4 * (5 + 5 + 5 + 5), "largest": 20}}
    assert any(e.type is EventType.NODE_PROGRESS for e in seen)
    # The jobs overlap in time (how many at once depends on how fast Ray starts workers on a busy machine).
    spans = [
        (result.nodes[j].started_at, result.nodes[j].finished_at)
        for j in ("fetch", "clean", "train", "score")
    ]
    most = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)  # type: ignore[operator]
    assert most >= 2, f"the jobs ran one after another: {spans}"
    assert elapsed < 15, f"quickstart took {elapsed:.1f} s"


def test_fan_out_join(settings: Settings) -> None:
    result = engine.run(EXAMPLES / "fan_out_join.json", None, settings=settings, executor="local")
    assert result.outputs == {"sum_of_squares": 1 + 4 + 9 + 16}


@pytest.mark.parametrize(("n", "expected", "skipped"), [(7, 14, "negated"), (3, -3, "doubled")])
def test_conditional_branch(settings: Settings, n: int, expected: int, skipped: str) -> None:
    result = engine.run(
        EXAMPLES / "conditional.json", {"n": n}, settings=settings, executor="local", optimize=False
    )
    assert result.outputs == {"result": expected}
    assert result.nodes[skipped].status is NodeStatus.SKIPPED


def test_map_over_a_list(settings: Settings) -> None:
    result = engine.run(
        EXAMPLES / "map_list.json", {"numbers": [1, 2, 3]}, settings=settings, executor="local"
    )
    assert result.outputs == {"each": [2, 5, 10], "total": 17}


def test_sql_pipeline_over_the_shipped_csv(settings: Settings) -> None:
    path = str(EXAMPLES / "data" / "sales.csv")
    # As the examples' README says: the example's data folder is made a data root of the installation.
    settings = Settings(home=settings.home, data_roots=[EXAMPLES / "data"])
    result = engine.run(EXAMPLES / "sql_pipeline.json", {"path": path}, settings=settings, executor="local")
    table = result.outputs["revenue"]
    rows = {r["region"]: float(r["revenue"]) for r in table.to_pylist()}
    assert rows == {"east": 100.0, "north": 84.0, "west": 64.0, "south": 47.5}


def test_retry_with_a_flaky_node(settings: Settings) -> None:
    from examples import retry_flaky

    seen: list[Event] = []
    result = engine.run(
        retry_flaky.workflow, retry_flaky.inputs(), settings=settings, executor="local", on_event=seen.append
    )
    assert result.outputs == {"answer": "payload after 3 calls"}
    assert result.nodes["fetch"].attempts == 3
    assert len([e for e in seen if e.type is EventType.NODE_RETRYING]) == 2


def test_cached_rerun(settings: Settings) -> None:
    from examples import cached_rerun

    first = engine.run(cached_rerun.workflow, {"x": 3}, settings=settings, executor="local")
    started = time.perf_counter()
    again = engine.run(cached_rerun.workflow, {"x": 3}, settings=settings, executor="local")
    assert time.perf_counter() - started < 0.5  # the node itself sleeps a whole second
    assert first.outputs == again.outputs == {"square": 9}
    assert again.nodes["square"].status is NodeStatus.CACHED
