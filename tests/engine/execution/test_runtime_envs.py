"""The cache of Ray's serialized plugin runtime environments."""

from __future__ import annotations

from engine.execution.ray.runtime_envs import SerializedEnvs


def test_serialized_envs_are_computed_once_per_distinct_env() -> None:
    envs = SerializedEnvs()
    env = {"env_vars": {"A": "1"}}
    first = envs.get(env)
    assert first is not None and "env_vars" in first
    assert envs.get({"env_vars": {"A": "1"}}) is first
    assert envs.get({"env_vars": {"A": "2"}}) != first
