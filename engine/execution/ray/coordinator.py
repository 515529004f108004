"""The run coordinator: a Ray actor that owns runs, so a caller can go away without killing its run.

Named, detached coordinator actors (`COORDINATOR_NAME`, see `cluster.actors`; one by default, or several that
share the runs by a hash of the run id, `engine.execution.ray.coordinators`) host the runs of the cluster;
keeping one alive between runs makes a run start in milliseconds instead of the second a new actor
process costs. For each run it submits every node whose upstream results are known at once, passing
ObjectRefs as arguments: Ray resolves the dependencies and moves data worker to worker; the coordinator waits
only for each task's small `TaskMeta` ref, in batches (`engine.execution.ray.completions`). Map nodes are the
exception: their list is a control value the coordinator must see to fan the sub-plan out, so the nodes that
read a map's result are submitted once the map's element runs are.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from cluster.actors import named_actor
from engine.compile.plan import Plan
from engine.execution.events import Event
from engine.execution.ray.completions import CompletionTracker
from engine.execution.ray.plans import PlanCache, ShippedPlan
from engine.execution.ray.priority import take_driver_priority
from engine.execution.ray.remote import COORDINATOR_NAME as COORDINATOR_NAME
from engine.execution.ray.remote import RemoteRunResult as RemoteRunResult
from engine.execution.ray.remote import RunOptions as RunOptions
from engine.execution.ray.remote import coordinator_name
from engine.execution.ray.run import CoordinatedRun
from engine.execution.ray.submit import NodeRemotes
from engine.execution.task import RawEvent
from nodes.ids import RunId

#: Finished runs kept for late subscribers (the store keeps everything durably).
KEEP_FINISHED_RUNS = 20


class RunCoordinator:
    """The coordinator actor body (async): hosts runs; see the module docstring."""

    def __init__(self, name: str = COORDINATOR_NAME) -> None:
        #: This coordinator's actor name: its tasks report to it by name, and `run.started` records it.
        self.name = name
        self.runs: OrderedDict[str, CoordinatedRun] = OrderedDict()
        self.mains: dict[str, asyncio.Task[None]] = {}
        self.metrics: Any = None
        self.tracker: CompletionTracker | None = None
        self.remotes: NodeRemotes | None = None
        self.plans = PlanCache()
        # A driver's CPU priority where permitted (see `engine.execution.ray.priority`); taken again by the first
        # run, on the event-loop thread, which may have started after this one.
        take_driver_priority()
        _tune_garbage_collector()

    async def start_run(
        self,
        run_id: RunId,
        plan: Plan | ShippedPlan,
        inputs: Mapping[str, Any],
        cached: Mapping[str, tuple[str, Mapping[str, Any]]],
        options: RunOptions,
    ) -> str:
        """Start a run (returns once every node that can be submitted now has been).

        `plan` comes whole or, from a `PlanShipper`, as a ref to it (rebuilt once per coordinator)."""
        import ray

        plan = await self.plans.get(plan)

        if self.metrics is None:  # the first run
            from engine.execution.ray.metrics import EngineMetrics

            take_driver_priority()
            self.metrics = EngineMetrics.create()
            self.tracker = CompletionTracker(asyncio.get_running_loop())
            self.remotes = NodeRemotes()
        assert self.tracker is not None and self.remotes is not None
        me = ray.get_runtime_context().current_actor
        run = CoordinatedRun(
            me,
            run_id,
            plan,
            inputs,
            cached,
            options,
            self.metrics,
            self.tracker,
            self.remotes,
            name=self.name,
        )
        self.runs[run_id] = run
        self._trim()
        self.mains[run_id] = asyncio.ensure_future(run.main())
        return run_id

    def _trim(self) -> None:
        finished = [k for k, r in self.runs.items() if r.done.done()]
        for key in finished[: max(len(finished) - KEEP_FINISHED_RUNS, 0)]:
            del self.runs[key]
        for key in [k for k, t in self.mains.items() if t.done()]:
            del self.mains[key]

    def _run(self, run_id: RunId) -> CoordinatedRun:
        run = self.runs.get(run_id)
        if run is None:
            raise KeyError(
                f"run {run_id!r} is not known to the coordinator (finished long ago, or never started)"
            )
        return run

    async def report(self, run_id: RunId, prefix: str, key: str, index: int, events: list[RawEvent]) -> None:
        """Events from a running task (fire-and-forget); `index` is the task-local number of the first."""
        run = self.runs.get(run_id)
        if run is not None:
            run.report(prefix, key, index, events)

    async def poll(self, run_id: RunId, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Events after `after`, waiting up to `timeout` s for one; and whether the run has finished."""
        return await self._run(run_id).poll(after, timeout)

    async def result(self, run_id: RunId) -> RemoteRunResult:
        """Wait for the run to end; statuses and output refs."""
        return await asyncio.shield(self._run(run_id).done)

    async def cancel(self, run_id: RunId) -> None:
        """Cancel a run's queued and running nodes."""
        self._run(run_id).cancel()

    async def process_info(self) -> dict[str, Any]:
        """The coordinator's name, process id, resident memory (bytes), niceness and number of runs it holds."""
        import os

        rss = 0
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
        except OSError:  # not Linux: report 0 rather than fail
            rss = 0
        from engine.execution.ray.priority import may_raise_priority

        return {
            "name": self.name,
            "pid": os.getpid(),
            "rss_bytes": rss,
            "runs": len(self.runs),
            "niceness": os.nice(0),
            "may_raise_priority": int(may_raise_priority()),
        }

    async def ping(self) -> bool:
        """Liveness check (also used to wait for the actor to be up)."""
        return True


def _tune_garbage_collector() -> None:
    """Collect the coordinator's short-lived objects less often, and never rescan what it started with.

    A run allocates and drops a handful of small objects per node. With Python's default thresholds the
    collector ran about 40 times per 1,000-node run and rescanned the whole heap (Ray, the plans of recent
    runs) every few runs: about 27 ms of every W1 run, with the event loop stopped (issue 4). Objects alive at
    start-up are frozen out of collection, and young objects are collected every 10,000 allocations.
    """
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def coordinator_actor(index: int = 0) -> Any:
    """The cluster's coordinator actor `index` (created on first use; detached so runs outlive their callers)."""
    name = coordinator_name(index)
    return named_actor(RunCoordinator, name, args=(name,), num_cpus=0, max_concurrency=10_000)
