"""Direct task submission: what `TaskSubmitter` submits runs as `.options(...).remote(...)` would."""

from __future__ import annotations

from typing import Any

import pytest

from engine.execution.ray.submit import TaskSubmitter, direct_submission_supported

pytestmark = pytest.mark.usefixtures("ray_session")


def _probe(x: int, y: int = 0) -> tuple[int, str | None, dict[str, float]]:
    import ray

    context = ray.get_runtime_context()
    return x + y, context.get_task_name(), context.get_assigned_resources()


def _pair(x: int) -> tuple[int, int]:
    return x, -x


def test_the_pinned_ray_takes_the_direct_path() -> None:
    # Ray is pinned to 2.60.x; if its core-worker call changes, this fails rather than silently losing speed.
    assert direct_submission_supported()


def test_tasks_get_their_arguments_name_resources_and_returns() -> None:
    import ray

    submitter = TaskSubmitter(ray.remote(_probe))
    first = submitter.submit({"name": "wf/first:t@1", "max_retries": 0}, None, [1, 2])
    assert ray.get(first)[0] == 3
    assert submitter._exported()  # the first call exported the function: the rest go direct
    value, name, resources = ray.get(submitter.submit({"name": "wf/n1:t@1", "max_retries": 1}, None, [5]))
    assert (value, name) == (5, "wf/n1:t@1")
    assert resources == {"CPU": 1.0}
    _, _, resources = ray.get(submitter.submit({"name": "wf/n2:t@1", "num_cpus": 2}, None, [5]))
    assert resources == {"CPU": 2.0}
    _, _, resources = ray.get(submitter.submit({"name": "wf/n3:t@1", "num_cpus": 0.5}, None, [5]))
    assert resources == {"CPU": 0.5}
    pair = TaskSubmitter(ray.remote(_pair))
    ray.get(pair.submit({"num_returns": 2}, None, [0]))
    a, b = pair.submit({"num_returns": 2}, None, [4])
    assert ray.get([a, b]) == [4, -4]


def test_an_object_ref_argument_is_resolved_before_the_task_runs() -> None:
    import ray

    submitter = TaskSubmitter(ray.remote(_probe))
    ray.get(submitter.submit({}, None, [0]))
    upstream = ray.put(40)
    value, _, _ = ray.get(submitter.submit({"name": "wf/dep:t@1"}, None, [upstream, 2]))
    assert value == 42


def test_options_it_does_not_handle_go_through_ray() -> None:
    import ray

    submitter = TaskSubmitter(ray.remote(_probe))
    ray.get(submitter.submit({}, None, [0]))
    options: dict[str, Any] = {"name": "wf/s:t@1", "scheduling_strategy": "SPREAD"}
    value, name, _ = ray.get(submitter.submit(options, None, [1]))
    assert (value, name) == (1, "wf/s:t@1")
