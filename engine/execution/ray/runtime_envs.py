"""Ray's serialized form of plugin runtime environments, computed once per environment instead of per task.

`RemoteFunction._remote` takes `serialized_runtime_env_info`; `.options(runtime_env=...)` would validate and
serialize the environment again for every task the coordinator submits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
