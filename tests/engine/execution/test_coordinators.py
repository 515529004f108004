"""Several run coordinators (`Settings.coordinators`): runs spread by a stable hash of their id, each run
records the coordinator that drove it, a task's events reach its run's coordinator, and a dead coordinator's
runs go to its sibling until its replacement is up."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

import engine
from cluster.actors import find_actor
from cluster.settings import Settings
from engine.execution.events import Event
from engine.execution.ray.coordinators import CoordinatorPool, coordinator_name, coordinator_names, slot_of
from engine.execution.ray.executor import RayExecutor
from engine.workflow import Workflow
from nodes.states import EventType, RunStatus
from tests.engine.execution import sample_nodes as s


def ids_for(slots: list[int], count: int) -> list[str]:
    """Run ids that hash to `slots` (in that order) among `count` coordinators."""
    found: list[str] = []
    for slot in slots:
        while True:
            run_id = f"run-{uuid.uuid4().hex}"
            if slot_of(run_id, count) == slot:
                found.append(run_id)
                break
    return found


def test_a_run_id_hashes_to_the_same_coordinator_everywhere_and_ids_spread_evenly() -> None:
    # CRC-32 of the id: the same in every process and Python (never `hash()`, which is salted per process).
    assert [slot_of("run-0001", n) for n in (1, 2, 3, 4)] == [0, 1, 2, 3]
    assert [slot_of("run-0004", n) for n in (1, 2, 3, 4)] == [0, 0, 2, 0]
    counts = Counter(slot_of(f"run-{uuid.uuid4().hex}", 4) for _ in range(4000))
    assert sorted(counts) == [0, 1, 2, 3] and min(counts.values()) > 850, counts
    assert coordinator_names(3) == [
        "rayweave-coordinator",
        "rayweave-coordinator-1",
        "rayweave-coordinator-2",
    ]
    with pytest.raises(ValueError, match="at least one run coordinator"):
        CoordinatorPool(0)


def test_settings_name_how_many_coordinators(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().coordinators == 1
    monkeypatch.setenv("RAYWEAVE_COORDINATORS", "2")
    settings = Settings()
    assert settings.coordinators == 2
    assert RayExecutor.for_settings(settings)._pool.count == 2


def _started_by(seen: list[Event]) -> list[str]:
    return [str(e.payload.get("coordinator")) for e in seen if e.type is EventType.RUN_STARTED]


def _run(wf: Workflow, settings: Settings, executor: RayExecutor, run_id: str) -> tuple[Any, list[Event]]:
    seen: list[Event] = []
    result = engine.run(
        wf, None, settings=settings, cache=False, executor=executor, run_id=run_id, on_event=seen.append
    )
    return result, seen


@pytest.mark.usefixtures("ray_session")
def test_runs_spread_over_two_coordinators_and_a_dead_ones_runs_go_to_its_sibling(settings: Settings) -> None:
    import ray

    executor = RayExecutor(coordinators=2)
    wf = Workflow("spread")
    wf.output("out", wf.add("g", s.steps, n=3))  # a generator: its task reports events to the coordinator
    try:
        # A run on each coordinator: each records where it was coordinated, and its task's own events
        # (node.output, sent by name to the run's coordinator) all arrive.
        for run_id in ids_for([0, 1], 2):
            result, seen = _run(wf, settings, executor, run_id)
            assert result.status is RunStatus.SUCCEEDED and result.outputs == {"out": 3}
            assert _started_by(seen) == [coordinator_name(slot_of(run_id, 2))]
            assert [e.payload["value"] for e in seen if e.type is EventType.NODE_OUTPUT] == [1, 2, 3]
        infos = ray.get([h.process_info.remote() for h in executor.coordinators()])
        assert [i["name"] for i in infos] == coordinator_names(2)
        assert infos[0]["pid"] != infos[1]["pid"]  # two actor processes

        # Coordinator 1 dies: a run that hashes to it goes to its sibling while its replacement starts...
        ray.kill(find_actor(coordinator_name(1)))
        (lost,) = ids_for([1], 2)
        result, seen = _run(wf, settings, executor, lost)
        assert result.status is RunStatus.SUCCEEDED and _started_by(seen) == [coordinator_name(0)]
        # ...and once the replacement answers, such runs go to it again.
        replacement = ray.get(executor.coordinator(1).process_info.remote())
        assert replacement["name"] == coordinator_name(1) and replacement["pid"] != infos[1]["pid"]
        (back,) = ids_for([1], 2)
        result, seen = _run(wf, settings, executor, back)
        assert result.status is RunStatus.SUCCEEDED and _started_by(seen) == [coordinator_name(1)]

        # An API replica that did not launch a run cancels it on the coordinator that holds it.
        from serve.runs import DurableRunLauncher

        long = Workflow("long")
        long.output("out", long.add("z", s.nap, x=1, params={"seconds": 60.0}, resources={"num_cpus": 0}))
        (held,) = ids_for([1], 2)
        handle = engine.submit(long, None, settings=settings, cache=False, executor=executor, run_id=held)
        assert DurableRunLauncher._cancel_on_coordinator(held, 2)
        assert handle.result(timeout=30).status is RunStatus.CANCELLED
        assert not DurableRunLauncher._cancel_on_coordinator("run-held-by-none", 2)
    finally:
        extra = find_actor(coordinator_name(1))  # only this module's runs use it: free its process
        if extra is not None:
            ray.kill(extra)
