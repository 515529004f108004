"""CPU priority of the run coordinator and of the node tasks it submits.

Ray starts every worker process at niceness `worker_niceness` (15 by default) and leaves drivers at 0, so a
driver that submits tasks is scheduled ahead of the tasks it already submitted. The coordinator actor is such a
driver for every run, but as an actor it would get a worker's niceness and compete on equal terms with the node
tasks it is submitting: on a busy machine it then submits more slowly than tiny tasks finish, every worker lease
runs dry after one or two tasks, and Ray spends its time granting and returning leases (measured on the 1,000-node
fan-out: 682 lease requests per run instead of 63). Ray's own job supervisor solves the same problem the same way:
the actor that hosts a job's driver gets `RAY_worker_niceness=0` in its runtime environment. See ADR 006.

Ray copies a parent's runtime environment into the tasks and actors it submits, so everything the coordinator
submits gets `RAY_worker_niceness` back at the worker default (`with_worker_niceness`). Runtime environments
are serialized once per distinct environment (`SerializedEnvs`), not once per task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: The variable Ray's raylet reads when it starts a worker process for a runtime environment.
NICENESS_VAR = "RAY_worker_niceness"
#: The coordinator's niceness: that of a Ray driver.
COORDINATOR_NICENESS = "0"
#: Ray's default `worker_niceness`, given back to everything the coordinator submits.
WORKER_NICENESS = "15"


def coordinator_runtime_env() -> dict[str, Any]:
    """The runtime environment of the coordinator actor."""
    return {"env_vars": {NICENESS_VAR: COORDINATOR_NICENESS}}


def with_worker_niceness(runtime_env: Mapping[str, Any] | None) -> dict[str, Any]:
    """`runtime_env` (a node's plugin environment, or none) with the worker niceness set in its env_vars."""
    env = dict(runtime_env or {})
    env_vars = dict(env.get("env_vars") or {})
    env_vars.setdefault(NICENESS_VAR, WORKER_NICENESS)
    env["env_vars"] = env_vars
    return env


class SerializedEnvs:
    """Ray's serialized form of each runtime environment, computed once per distinct environment.

    `get(env)` returns the string Ray's `RemoteFunction._remote` takes as `serialized_runtime_env_info`, or
    None when this Ray has no such helper (the caller then goes through `.options(runtime_env=...)`).
    """

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def get(self, runtime_env: Mapping[str, Any]) -> str | None:
        """The serialized runtime env info of `runtime_env`."""
        key = json.dumps(runtime_env, sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = _serialize(runtime_env)
        return self._cache[key]


def _serialize(runtime_env: Mapping[str, Any]) -> str | None:
    try:
        from ray._private.utils import get_runtime_env_info, parse_runtime_env_for_task_or_actor
    except ImportError:  # a Ray without these helpers: `.options` does the work per task
        return None
    parsed = parse_runtime_env_for_task_or_actor(dict(runtime_env))
    info = get_runtime_env_info(parsed, is_job_runtime_env=False, serialize=True)
    return str(info)
