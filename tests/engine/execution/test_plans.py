"""Plans travel to the coordinator once per plan object, and every run of a shipped plan is a full run."""

from __future__ import annotations

import asyncio
import gc

import pytest

import engine
from cluster.settings import Settings
from engine.compile import compile_workflow
from engine.compile.plan import Plan
from engine.execution.ray.executor import RayExecutor
from engine.execution.ray.plans import PlanCache, PlanShipper, ShippedPlan
from engine.workflow import Workflow
from nodes.states import RunStatus
from tests.engine.execution import sample_nodes as s

pytestmark = pytest.mark.usefixtures("ray_session")


def _plan(name: str = "ship") -> Plan:
    wf = Workflow(name)
    x = wf.input("x", "Int")
    wf.output("out", wf.add("sum", s.total, xs=[wf.add(f"d{i}", s.double, x=x) for i in range(3)]))
    return compile_workflow(wf, optimize=False)


def test_a_plan_is_put_once_and_each_run_uses_its_own_inputs(settings: Settings) -> None:
    executor = RayExecutor()
    plan = _plan()
    shipped = executor._plans.ship(plan)
    assert executor._plans.ship(plan) is shipped  # the second run sends the same ref
    sent: list[object] = []
    ship = executor._plans.ship

    def spy(what: Plan) -> ShippedPlan:
        sent.append(what)
        return ship(what)

    executor._plans.ship = spy  # type: ignore[method-assign]
    for x in (1, 5, 10):
        result = engine.run(plan, {"x": x}, settings=settings, executor=executor, cache=False)
        assert result.status is RunStatus.SUCCEEDED
        assert result.outputs["out"] == 6 * x
    # Each run hands the executor the compiled plan itself, not a copy (a copy would be put again).
    assert len(sent) == 3 and all(what is plan for what in sent)
    assert ship(plan) is shipped


def test_another_plan_object_is_shipped_on_its_own_and_a_dropped_plan_is_forgotten() -> None:
    shipper = PlanShipper()
    first, second = _plan("one"), _plan("two")
    assert shipper.ship(first).ref != shipper.ship(second).ref
    del first
    gc.collect()
    assert len(shipper._shipped) == 1


def test_the_coordinator_cache_fetches_a_plan_it_does_not_hold_and_keeps_a_bounded_number() -> None:
    import ray

    plan = _plan()
    cache = PlanCache()
    shipped = ShippedPlan(ray.put(plan))

    async def scenario() -> None:
        got = await cache.get(shipped)
        assert got == plan
        assert await cache.get(shipped) is got  # rebuilt once
        assert await cache.get(plan) is plan  # a plan sent whole is used as it is
        for _ in range(PlanCache.LIMIT):
            await cache.get(ShippedPlan(ray.put(_plan())))
        assert len(cache._plans) == PlanCache.LIMIT
        assert await cache.get(shipped) == plan  # evicted, fetched again

    asyncio.run(scenario())


def test_runs_do_not_export_the_node_task_again(settings: Settings) -> None:
    # Ray keeps every exported function in the GCS until the job ends, and every worker fetches each one
    # it runs: the coordinator's remote functions are made once, not once per run.
    from ray._private.ray_constants import KV_NAMESPACE_FUNCTION_TABLE
    from ray.experimental.internal_kv import _internal_kv_list

    executor = RayExecutor()
    plan = _plan()
    engine.run(plan, {"x": 1}, settings=settings, executor=executor, cache=False)
    before = len(_internal_kv_list(b"RemoteFunction", namespace=KV_NAMESPACE_FUNCTION_TABLE))
    for x in range(3):
        engine.run(plan, {"x": x}, settings=settings, executor=executor, cache=False)
    assert len(_internal_kv_list(b"RemoteFunction", namespace=KV_NAMESPACE_FUNCTION_TABLE)) == before


def test_a_finished_run_keeps_its_events_but_not_its_node_records(settings: Settings) -> None:
    # What a finished run keeps, the coordinator's collector scans on every pass: only what late subscribers
    # read (its events) and its result stay.
    executor = RayExecutor()
    handle = engine.submit(_plan("kept"), {"x": 2}, settings=settings, executor=executor, cache=False)
    result = handle.result(timeout=60)
    assert result.ok and len(result.nodes) == 4

    def kept(coordinator: object, run_id: str) -> tuple[int, int]:
        run = coordinator.runs[run_id]  # type: ignore[attr-defined]
        return len(run.state.records), len(run.log.after(0))

    import ray

    records, events = ray.get(executor.coordinator().__ray_call__.remote(kept, result.run_id))
    assert records == 0 and events > 0
    assert [e.seq for e in handle.events()][-1] == events  # a late subscriber still reads every event
