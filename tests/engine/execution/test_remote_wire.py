"""What travels between the coordinator and its tasks: the status record survives the trip intact."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from engine.compile import compile_workflow
from engine.compile.plan import PlannedNode
from engine.execution.ray.remote import shippable
from engine.execution.ray.wire import TaskFields, Templates, pack, pack_meta, pack_task, unpack, unpack_meta
from engine.execution.result import NodeError
from engine.execution.task import NodeOutcome, TaskEmitter, TaskMeta, TaskSpec, execute_task
from engine.workflow import Workflow
from nodes.states import NodeStatus
from tests.engine.compile import nodes_for_tests as cheap
from tests.engine.execution import sample_nodes as s


def test_meta_round_trip_keeps_statuses_timings_and_errors() -> None:
    error = NodeError("b", 2, "ValueError", "bad value", "Traceback (most recent call last): ...")
    meta = TaskMeta(
        "group",
        (
            NodeOutcome("a", "t/a@1", NodeStatus.SUCCEEDED, 1, 10.0, 10.5),
            NodeOutcome("b", "t/b@1", NodeStatus.FAILED, 2, 10.5, 11.0, error),
            NodeOutcome("c", "t/c@1", NodeStatus.SKIPPED),
        ),
        events_sent=3,
        started_at=10.0,
        finished_at=11.0,
    )
    back = unpack_meta(pack_meta(meta))
    assert back == meta
    assert back.failed
    assert back.outcomes[0].status is NodeStatus.SUCCEEDED


def test_non_meta_values_pass_through_unchanged() -> None:
    exc = RuntimeError("worker died")
    assert unpack_meta(exc) is exc


def _prototype(node: PlannedNode) -> TaskSpec:
    return TaskSpec(
        run_id="r",
        workflow="wire",
        node=node,
        arg_keys=(),
        out_ports=tuple(node.outputs),
        extra={"prefix": "", "coordinator": "c"},
    )


def test_nodes_of_one_kind_share_one_template_and_keep_their_own_fields() -> None:
    wf = Workflow("wire")
    doubles = [wf.add(f"d{i}", s.double, x=i) for i in range(3)]
    wf.output("out", wf.add("sum", s.total, xs=doubles))
    plan = compile_workflow(wf, optimize=False)
    templates = Templates()
    nodes = [replace(plan.node(f"d{i}"), cache_key=f"key-{i}") for i in range(3)]
    assert len({templates.get(n, _prototype) for n in nodes}) == 1
    assert templates.get(plan.node("sum"), _prototype) != templates.get(nodes[0], _prototype)
    for index, planned in enumerate(nodes):
        template = templates.get(planned, _prototype)
        assert template is not None
        prefix = "m[1]/" if index == 2 else ""
        back = unpack(
            pack_task(
                template, TaskFields(planned.id, planned.cache_key, (), {"x": 7}, {}, prefix, index == 1)
            )
        )
        assert back.node.id == planned.id
        assert back.node.cache_key == planned.cache_key is not None
        assert back.node.definition is not None and back.node.type_id == planned.type_id
        assert back.consts == {"x": 7} and back.out_ports == ("out",) and back.run_id == "r"
        assert back.persist is (index == 1)
        assert back.extra == {"prefix": prefix, "coordinator": "c"}
        outputs, meta = execute_task(back, (), TaskEmitter(lambda index, events: None))
        assert outputs == [14] and meta.outcomes[0].node == planned.id
    # Each task got its own copies: the worker's template is unchanged.
    again = unpack(
        pack_task(
            templates.get(nodes[0], _prototype) or b"", TaskFields("other", None, (), {}, {}, "", False)
        )
    )
    assert again.node.id == "other" and again.extra == {"prefix": "", "coordinator": "c"}


def test_fused_groups_travel_whole() -> None:
    wf = Workflow("wire")
    first = wf.add("first", cheap.inc, x=1)
    wf.output("out", wf.add("second", cheap.inc, x=first))
    plan = compile_workflow(wf, optimize=True)
    (group,) = plan.nodes
    assert group.is_fused and Templates().get(group, _prototype) is None
    spec = TaskSpec(run_id="r", workflow="wire", node=shippable(group), arg_keys=(), out_ports=())
    assert unpack(pack(spec)) == spec


def test_a_worker_heap_is_frozen_once_and_never_with_node_data_alive() -> None:
    import gc

    from engine.execution.ray.remote import _WorkerHeap

    assert not _WorkerHeap.settled and gc.get_freeze_count() == 0
    try:
        _WorkerHeap.settle(([1, 2, 3],))  # a container argument could hold node data: not now
        assert not _WorkerHeap.settled and gc.get_freeze_count() == 0
        _WorkerHeap.settle((b"spec", 3, "x", None))
        assert _WorkerHeap.settled and gc.get_freeze_count() > 0
        # Once only. (Not by comparing freeze counts: frozen objects that other threads free leave the count.)
        freezes: list[int] = []
        real_freeze = gc.freeze
        gc.freeze = lambda: freezes.append(1)
        try:
            _WorkerHeap.settle((1,))
        finally:
            gc.freeze = real_freeze
        assert freezes == []
    finally:
        gc.unfreeze()
        _WorkerHeap.settled = False


def test_tasks_keep_the_coordinator_handle_across_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from engine.execution.ray import remote

    looked_up: list[str] = []
    sent: list[tuple[Any, ...]] = []
    handle = SimpleNamespace(report=SimpleNamespace(remote=lambda *args: sent.append(args)))

    def get_actor(name: str, namespace: str) -> Any:
        looked_up.append(name)
        return handle

    def spec(run_id: str, coordinator_id: str) -> Any:
        extra = {"coordinator": "coord", "coordinator_id": coordinator_id, "prefix": ""}
        return SimpleNamespace(run_id=run_id, extra=extra, node=SimpleNamespace(id="n"))

    monkeypatch.setattr(ray, "get_actor", get_actor)
    remote._coordinator.cache_clear()
    try:
        event: tuple[Any, ...] = ("node.log", "n", 1, 0.0, {})
        remote._send(spec("run-1", "actor-a"), 0, [event])
        remote._send(spec("run-2", "actor-a"), 0, [event])
        assert looked_up == ["coord"], "a second run of the same coordinator looked its handle up again"
        remote._send(spec("run-3", "actor-b"), 0, [event])  # the coordinator was started again
        assert looked_up == ["coord", "coord"]
        assert [args[0] for args in sent] == ["run-1", "run-2", "run-3"]
    finally:
        remote._coordinator.cache_clear()


def test_meta_carries_the_ray_node_its_task_ran_on() -> None:
    meta = TaskMeta("a", (NodeOutcome("a", "t/a@1", NodeStatus.SUCCEEDED, 1, 10.0, 10.5),))
    placed = unpack_meta(pack_meta(meta, ("ab12", "10.231.7.11")))
    assert placed.placement == ("ab12", "10.231.7.11")
    assert unpack_meta(pack_meta(meta)).placement is None  # in-process: nowhere to name
