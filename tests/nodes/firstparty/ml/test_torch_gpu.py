"""GPU nodes: a node that declares `num_gpus` runs only where Ray has a GPU, waits while none is free, and two
such nodes share one GPU one at a time.

This machine has no GPU. The test adds a second Ray node to the session's cluster that *declares* one
(`num_gpus=1`: Ray's GPU is a logical resource, like any custom resource, whatever the hardware) and a custom
resource, runs workflows on the real Ray executor, and removes the node again before it ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.execution.ray.executor import RayExecutor
from nodes import Resources, node

pytestmark = [pytest.mark.usefixtures("ray_session"), pytest.mark.slow]

NAP_S = 1.0


#: Where and when a node ran: its Ray node, the GPUs Ray gave it, its own start and end times.
Placement = dict[str, Any]


def _placement(started: float) -> Placement:
    import ray

    time.sleep(NAP_S)
    return {
        "ray_node": ray.get_runtime_context().get_node_id(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started": started,
        "ended": time.time(),
    }


@node(plugin="gpu-test", cache=False, deterministic=False, resources=Resources(num_cpus=0, num_gpus=1))
def on_gpu(tag: int) -> Placement:
    """Declares one GPU; reports where it ran."""
    return _placement(time.time())


@node(plugin="gpu-test", cache=False, deterministic=False, resources=Resources(num_cpus=0))
def anywhere(tag: int) -> Placement:
    """Declares no GPU; a workflow document may ask for one."""
    return _placement(time.time())


@contextmanager
def gpu_ray_node(num_gpus: int = 1, custom: dict[str, float] | None = None) -> Iterator[str]:
    """A second Ray node in the session's cluster, on loopback, declaring `num_gpus` GPUs; yields its node id
    and removes the node (its raylet and workers) on exit.

    `ray start` refuses to add a node to a loopback-only cluster (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), so the
    node is started the way Ray's own `cluster_utils` does, in this process; its processes are this test's.
    """
    import ray
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    options: dict[str, Any] = {
        "gcs_address": ray.get_runtime_context().gcs_address,
        "node_ip_address": "127.0.0.1",
        "num_cpus": 1,
        "num_gpus": num_gpus,
        "resources": dict(custom or {}),
        "object_store_memory": 80 * 1024**2,
        "min_worker_port": 0,
        "max_worker_port": 0,
        "node_manager_port": 0,
        "include_log_monitor": False,  # one log monitor per machine: the head's
        "dashboard_agent_listen_port": None,  # a free port, not the head agent's
    }
    params = RayParams(**options)
    extra = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    try:
        _wait(lambda: _alive(extra.node_id), "the GPU node to join")
        yield extra.node_id
    finally:
        extra.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
        _wait(lambda: not _alive(extra.node_id), "the GPU node to leave")


def _alive(node_id: str) -> bool:
    import ray

    cluster: Any = ray
    return any(n["NodeID"] == node_id and n["Alive"] for n in cluster.nodes())


def _wait(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _two_on_gpu() -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "two-gpu-nodes",
        "nodes": {
            "a": {"type": "gpu-test/on_gpu@1", "in": {"tag": {"value": 1}}},
            "b": {"type": "gpu-test/on_gpu@1", "in": {"tag": {"value": 2}}},
        },
        "outputs": {"a": "a", "b": "b"},
    }


def test_gpu_nodes_wait_for_a_gpu_run_only_there_and_share_one_at_a_time(settings: Settings) -> None:
    import ray

    from nodes import Catalog

    cluster: Any = ray
    assert not cluster.cluster_resources().get("GPU"), "the session's Ray should have no GPU of its own"
    catalog = Catalog([on_gpu, anywhere])
    handle = engine.submit(
        _two_on_gpu(), catalog=catalog, settings=settings, executor=RayExecutor(), cache=False
    )
    time.sleep(2.0)  # no GPU in the cluster: the nodes must wait, not run on a CPU-only node, not fail
    with gpu_ray_node(custom={"fake_accelerator": 1}) as gpu_node:
        joined = time.time()
        result = handle.result(120)
        assert result.ok, result.errors
        a, b = result.outputs["a"], result.outputs["b"]
        assert a["ray_node"] == b["ray_node"] == gpu_node
        assert a["cuda_visible_devices"] == b["cuda_visible_devices"] == "0"  # Ray assigned them GPU 0
        assert min(a["started"], b["started"]) >= joined - 0.5  # neither ran before a GPU existed
        first, second = sorted((a, b), key=lambda p: p["started"])
        assert second["started"] >= first["ended"] - 0.05, (a, b)  # one GPU: one at a time

        # A workflow document can ask for a GPU, or a custom resource, for a node type that declares none.
        doc = {
            "format": "rayweave.workflow/1",
            "name": "gpu-by-document",
            "nodes": {
                "plain": {"type": "gpu-test/anywhere@1", "in": {"tag": {"value": 0}}},
                "gpu": {
                    "type": "gpu-test/anywhere@1",
                    "in": {"tag": {"value": 1}},
                    "resources": {"num_gpus": 1},
                },
                "accel": {
                    "type": "gpu-test/anywhere@1",
                    "in": {"tag": {"value": 2}},
                    "resources": {"custom": {"fake_accelerator": 1}},
                },
            },
            "outputs": {"plain": "plain", "gpu": "gpu", "accel": "accel"},
        }
        placed = engine.run(doc, catalog=catalog, settings=settings, executor=RayExecutor(), cache=False)
        assert placed.ok, placed.errors
        assert placed.outputs["gpu"]["ray_node"] == gpu_node
        assert placed.outputs["gpu"]["cuda_visible_devices"] == "0"
        assert placed.outputs["plain"]["cuda_visible_devices"] == ""
        assert placed.outputs["accel"]["ray_node"] == gpu_node  # only that node has the custom resource
        assert placed.outputs["accel"]["cuda_visible_devices"] == ""  # and it asked for no GPU
    assert not cluster.cluster_resources().get("GPU")
