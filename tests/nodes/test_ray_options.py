"""A node's policy becomes its Ray options in one place (`nodes.ray_options`), and Ray accepts what it makes."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.policy import Resources
from nodes.ray_options import actor_options, actor_options_of, task_options

ENV = {"env_vars": {"RAYWEAVE_PLUGIN": "acme/tools@1.2.0"}}


def _valid_for_ray_task(options: dict[str, Any]) -> None:
    from ray._common.ray_option_utils import validate_task_options

    validate_task_options(dict(options), in_options=True)


def _valid_for_ray_actor(options: dict[str, Any]) -> None:
    from ray._common.ray_option_utils import validate_actor_options

    validate_actor_options(dict(options), in_options=True)


def test_unset_policy_leaves_everything_to_ray_but_exception_retries() -> None:
    # Ray's defaults apply (1 CPU, 3 retries after a dead worker); the engine alone retries exceptions.
    assert task_options() == {"retry_exceptions": False}
    assert task_options(Resources(), runtime_env={}, label_selector={}) == {"retry_exceptions": False}
    assert actor_options() == {}
    assert actor_options_of(task_options()) == {}


def test_resources_become_ray_resource_options() -> None:
    resources = Resources(num_cpus=2, num_gpus=0.5, memory=2**30, custom={"accelerator_a100": 1})
    options = task_options(resources)
    assert options == {
        "num_cpus": 2,
        "num_gpus": 0.5,
        "memory": 2**30,
        "resources": {"accelerator_a100": 1},
        "retry_exceptions": False,
    }
    _valid_for_ray_task(options)
    # Zero is a request (hold no CPU), not "unset".
    assert task_options(Resources(num_cpus=0))["num_cpus"] == 0
    assert actor_options_of(task_options(Resources(num_cpus=0))) == {"num_cpus": 0}


def test_system_fault_retries_become_max_retries_and_max_restarts() -> None:
    assert task_options(system_retries=0) == {"max_retries": 0, "retry_exceptions": False}
    assert task_options(system_retries=-1)["max_retries"] == -1  # Ray's "retry forever"
    assert actor_options(system_restarts=2) == {"max_restarts": 2}
    for bad in (-2, True, 1.5):
        with pytest.raises(ValueError, match="system_retries"):
            task_options(system_retries=bad)  # type: ignore[arg-type]
    _valid_for_ray_task(task_options(system_retries=5))
    _valid_for_ray_actor(actor_options(system_restarts=-1, max_concurrency=4))


def test_runtime_env_and_name() -> None:
    options = task_options(name="wf/a:acme/tools/fetch@1", runtime_env=ENV)
    assert options == {"name": "wf/a:acme/tools/fetch@1", "runtime_env": ENV, "retry_exceptions": False}
    assert options["runtime_env"] is not ENV  # a copy: the plan cannot be changed through the caller's dict
    _valid_for_ray_task(options)


def test_scheduling_strategy_and_label_selector() -> None:
    options = task_options(scheduling_strategy="SPREAD", label_selector={"zone": "eu-1"})
    assert options["scheduling_strategy"] == "SPREAD" and options["label_selector"] == {"zone": "eu-1"}
    _valid_for_ray_task(options)
    actor = actor_options(scheduling_strategy="SPREAD", label_selector={"zone": "eu-1"})
    assert actor == {"scheduling_strategy": "SPREAD", "label_selector": {"zone": "eu-1"}}
    _valid_for_ray_actor(actor)


def test_actor_options_of_a_task_keep_placement_and_drop_task_only_options() -> None:
    task = task_options(
        Resources(num_cpus=1, custom={"accel": 1}),
        name="wf/a:t@1",
        system_retries=3,
        runtime_env=ENV,
        scheduling_strategy="SPREAD",
    )
    task["num_returns"] = 2
    actor = actor_options_of(task, system_restarts=0, max_concurrency=1)
    assert actor == {
        "num_cpus": 1,
        "resources": {"accel": 1},
        "runtime_env": ENV,
        "scheduling_strategy": "SPREAD",
        "max_restarts": 0,
        "max_concurrency": 1,
    }
    _valid_for_ray_actor(actor)
