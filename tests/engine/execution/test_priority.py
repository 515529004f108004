"""Runtime environments that set the coordinator's and its tasks' CPU priority."""

from __future__ import annotations

from engine.execution.priority import (
    NICENESS_VAR,
    WORKER_NICENESS,
    SerializedEnvs,
    coordinator_runtime_env,
    with_worker_niceness,
)


def test_coordinator_gets_a_drivers_niceness() -> None:
    assert coordinator_runtime_env() == {"env_vars": {NICENESS_VAR: "0"}}


def test_tasks_get_the_worker_niceness_and_keep_their_plugin_env() -> None:
    assert with_worker_niceness(None) == {"env_vars": {NICENESS_VAR: WORKER_NICENESS}}
    plugin_env = {"py_modules": ["/x"], "env_vars": {"A": "1"}}
    merged = with_worker_niceness(plugin_env)
    assert merged == {"py_modules": ["/x"], "env_vars": {"A": "1", NICENESS_VAR: WORKER_NICENESS}}
    assert plugin_env == {"py_modules": ["/x"], "env_vars": {"A": "1"}}  # not modified in place
    # A plugin that sets its own niceness keeps it.
    assert with_worker_niceness({"env_vars": {NICENESS_VAR: "5"}})["env_vars"][NICENESS_VAR] == "5"


def test_serialized_envs_are_computed_once_per_distinct_env() -> None:
    envs = SerializedEnvs()
    first = envs.get(with_worker_niceness(None))
    assert first is not None and NICENESS_VAR in first
    assert envs.get(with_worker_niceness(None)) is first
    assert envs.get(with_worker_niceness({"env_vars": {"A": "1"}})) != first
