"""Durable runs: results written to a durable result store before success is recorded, run and node states in
the store, and a recovery sweep that resumes runs whose coordinator is gone without re-executing finished nodes.

Main names (imported lazily, nothing happens at import time):

- `DurableRunner(settings).submit(workflow, inputs) -> RunHandle`, `.run(...)`, `.resume(run_id)`, `.attach(run_id)`;
- `recover(settings, ...) -> list[run id]`, `start_recovery(settings) -> RecoverySweeper` (for `serve`);
- `ResultStore(uri)`, `StoreEventSink`, `StoredRun`, `stored_outputs`, `read_outputs` (values and skipped
  outputs).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DurableRunner": "engine.durable.runner",
    "recover": "engine.durable.recovery",
    "start_recovery": "engine.durable.recovery",
    "RecoverySweeper": "engine.durable.recovery",
    "ResultStore": "engine.durable.results",
    "StoreEventSink": "engine.durable.sink",
    "StoredRun": "engine.durable.stored",
    "stored_outputs": "engine.durable.stored",
    "read_outputs": "engine.durable.stored",
    "StoredOutputs": "engine.durable.stored",
    "NotResumableError": "engine.durable.errors",
    "ResultNotFoundError": "engine.durable.errors",
    "ResultStoreError": "engine.durable.errors",
    "DurableError": "engine.durable.errors",
    "UnstorableOutputError": "engine.durable.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.durable' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
