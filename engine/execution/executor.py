"""The executor interface: what starts runs of compiled plans (`engine.execution.start.start_run` calls it).

Two implementations: `engine.execution.inprocess.InProcessExecutor` (in this process, for tests and debugging)
and `engine.execution.ray.executor.RayExecutor` (the cluster's run coordinator; everything Ray-specific lives in
`engine.execution.ray`). An executor takes a compiled `Plan` (with cache keys), the resolved workflow inputs and
the known results the caller found, starts the run and returns a `RunSource` that a `RunHandle` reads events
and the result from.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from engine.cache.result_cache import CacheHit
from engine.compile.plan import Plan
from engine.execution.events import EventSink
from engine.execution.handle import RunSource
from engine.execution.mapping import MapResultRecorder
from engine.secrets.refs import RunSecrets
from nodes.access import AccessPolicy
from nodes.ids import RunId
from nodes.objectstore import Location

__all__ = ["Executor", "wait_until"]


class Executor(Protocol):
    """Starts runs of compiled plans."""

    def start(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        *,
        run_id: RunId | None = None,
        fail_fast: bool = False,
        cached: Mapping[str, CacheHit] | None = None,
        cache_dir: str | Location | None = None,
        sink: EventSink | None = None,
        persist_nodes: frozenset[str] = frozenset(),
        policy: AccessPolicy | None = None,
        cache_scope: str = "",
        map_results: MapResultRecorder | None = None,
        detached: bool = False,
        secrets: RunSecrets | None = None,
    ) -> RunSource:
        """Start running `plan`; `cached` holds the nodes answered from the cache (not run again).

        `policy` says what the run's file and network nodes may reach (`engine.execution.access`); without
        one they reach no file and no internal address. `cache_scope`: the scope the plan's cache keys were
        made in (nodes make their dynamic keys in it). `map_results`: where a durable run keeps its top-level
        map nodes' results. `detached`: the run must not depend on the calling process (a durable run):
        inputs and cached values travel inline, never as objects this process owns. `secrets`: the sealed
        secrets the run's nodes refer to, for their tasks to open (`engine.secrets.refs`)."""
        ...


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate()` until it is true or `timeout` passes (a helper for callers and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
