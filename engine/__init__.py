"""rayweave engine: workflow documents, the compiler, executors (Ray and in-process), cache, events, store.

The main entry points are re-exported lazily (nothing is imported until first use):

- `engine.run(workflow, inputs=None, *, catalog=None, optimize=True, fail_fast=False, settings=None,
  outputs=None, on_event=None, executor=None, cache=None) -> RunResult` runs a workflow to the end;
- `engine.submit(...) -> RunHandle` starts one (`events()`, `result()`, `cancel()`, `run_id`);
- `RunResult`, `RunHandle`, `RunStatus`, `NodeStatus`, `Event`, `EventType`, `ResultCache`,
  `InProcessExecutor`, `RayExecutor`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run": "engine.execution.api",
    "submit": "engine.execution.api",
    "RunResult": "engine.execution.result",
    "NodeResult": "engine.execution.result",
    "NodeError": "engine.execution.result",
    "RunHandle": "engine.execution.handle",
    "RunStatus": "nodes.states",
    "NodeStatus": "nodes.states",
    "Event": "engine.execution.events",
    "EventType": "nodes.states",
    "EventSink": "engine.execution.events",
    "ResultCache": "engine.cache.result_cache",
    "InProcessExecutor": "engine.execution.inprocess",
    "RayExecutor": "engine.execution.ray.executor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
