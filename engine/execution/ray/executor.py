"""`RayExecutor`: runs plans on Ray through the cluster's run coordinator actors, and `RayRun`, the caller's view.

The executor ensures Ray on its first run (when made `for_settings`), hands each run to the named, detached
coordinator its run id hashes to (`engine.execution.ray.coordinators`: one by default, `Settings.coordinators`
for more), and replaces a coordinator that died since its last run (its runs go to a sibling meanwhile). A
detached run (a durable one) sends its inputs and known results inline; otherwise big inputs and cached values
go to the object store once and the plan is shipped once per plan object (`engine.execution.ray.plans`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.cache.memory import approx_size
from engine.cache.result_cache import CacheHit
from engine.compile.plan import Plan
from engine.execution.breaker import BreakerPolicy, RayBreakerClient, breaker_actor
from engine.execution.events import Event, EventSink
from engine.execution.mapping import MapResultRecorder
from engine.execution.nodeconfig import node_config_for
from engine.execution.ray.coordinators import CoordinatorPool
from engine.execution.ray.plans import PlanShipper
from engine.execution.ray.remote import DEFAULT_MAX_IN_FLIGHT
from engine.execution.result import RunResult
from nodes.access import AccessPolicy
from nodes.ids import RunId, new_run_id
from nodes.objectstore import Location

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.secrets.refs import RunSecrets

__all__ = ["RayExecutor", "RayRun"]

#: Input values bigger than this go to the object store once instead of travelling inside every call.
_PUT_ABOVE_BYTES = 64 * 1024


class RayRun:
    """A run owned by the cluster's run coordinator actor; a `RunSource` for `RunHandle`."""

    def __init__(self, coordinator: Any, run_id: RunId, plan: Plan) -> None:
        self.coordinator = coordinator
        self.run_id = run_id
        self.plan = plan
        #: After `result()`: refs of the outputs of nodes the caller asked to keep (for the cache).
        self.node_refs: dict[str, dict[str, Any]] = {}
        self._result: RunResult | None = None

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Long-poll the coordinator for events after `after`."""
        import ray

        events, finished = ray.get(self.coordinator.poll.remote(self.run_id, after, timeout))
        return list(events), bool(finished)

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end, then fetch its outputs (only these values come to this process)."""
        import ray

        if self._result is not None:
            return self._result
        try:
            remote = ray.get(self.coordinator.result.remote(self.run_id), timeout=timeout)
        except ray.exceptions.GetTimeoutError as exc:
            raise TimeoutError(
                f"run {self.run_id!r} did not finish within {timeout} s; call result() again"
            ) from exc
        names = list(remote.outputs)
        refs = [remote.outputs[n] for n in names]
        fetch = [i for i, r in enumerate(refs) if isinstance(r, ray.ObjectRef)]
        values = list(refs)
        if fetch:
            for i, value in zip(fetch, ray.get([refs[i] for i in fetch]), strict=True):
                values[i] = value
        self.node_refs = remote.node_refs
        self._result = RunResult(
            run_id=self.run_id,
            workflow=self.plan.name,
            status=remote.status,
            outputs=dict(zip(names, values, strict=True)),
            nodes=remote.nodes,
            started_at=remote.started_at,
            finished_at=remote.finished_at,
        )
        return self._result

    def cancel(self) -> None:
        """Ask the coordinator to cancel the run."""
        import ray

        ray.get(self.coordinator.cancel.remote(self.run_id))


class RayExecutor:
    """Runs plans on Ray through the cluster's run coordinator actor (Ray must be initialized).

    `started_delay_s`: a node reports `node.started` once it has run this long, within
    `DelayedReporter.POLL_S` (0.2 s) after that (tiny nodes never send it; their start is taken from their
    result), which keeps per-node overhead low on big fan-outs. Nodes with a timeout report it at once.

    `max_in_flight`: the most tasks of one run submitted to Ray and not yet finished. Ray's core worker holds
    about 10 KB per submitted task, so a run of 100,000 nodes submitted at once would cost the coordinator a
    gigabyte; beyond the window, ready nodes wait in the coordinator (in plan order) and go as tasks end.

    `coordinators`: how many coordinator actors share the cluster's runs (by a stable hash of the run id; see
    `engine.execution.ray.coordinators`). Every process of an installation must use the same number.
    """

    def __init__(
        self,
        *,
        check_types: bool = True,
        breaker_policy: BreakerPolicy | None = None,
        started_delay_s: float = 0.05,
        max_retries: int = 3,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        coordinators: int = 1,
    ) -> None:
        self.check_types = check_types
        self.breaker_policy = breaker_policy
        self.started_delay_s = started_delay_s
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self._pool = CoordinatorPool(coordinators)
        self._breakers: Any = None
        self._plans = PlanShipper()
        self._settings: Settings | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> RayExecutor:
        """The executor an installation's `Settings` describe: its first run connects to Ray as they say
        (`cluster.ray_runtime.ensure_ray`, which does nothing when Ray is initialized already).

        When Ray is initialized already, the coordinator actors are started at once (`start_coordinator`)."""
        executor = cls(max_in_flight=settings.max_tasks_in_flight, coordinators=settings.coordinators)
        executor._settings = settings
        ray = sys.modules.get("ray")  # never import Ray here: an executor may be built before Ray is started
        if ray is not None and ray.is_initialized():
            executor.start_coordinator()
        return executor

    def start_coordinator(self) -> None:
        """Create (or find by name) the coordinator actors without waiting for them to be up.

        A new coordinator is a new Ray worker process importing the engine (about 0.4 s on 2 cores): started
        here, it comes up while the caller compiles, opens the store and looks up the cache."""
        self._pool.start()

    def coordinator(self, index: int = 0) -> Any:
        """Coordinator `index`'s actor handle (created, or found by name, on first use), once it answers.

        Connects to Ray first when this executor was made `for_settings` and Ray is not initialized."""
        self._ensure_ray()
        return self._pool.handle(index)

    def coordinators(self) -> list[Any]:
        """Every coordinator's actor handle, once each answers (index order)."""
        self._ensure_ray()
        return self._pool.handles()

    def _ensure_ray(self) -> None:
        if self._settings is not None:
            ray = sys.modules.get("ray")
            if ray is None or not ray.is_initialized():
                from cluster.ray_runtime import ensure_ray

                ensure_ray(self._settings)

    def forget_coordinator(self) -> None:
        """Drop the coordinator handles (an actor died): the next run finds or starts the cluster's current ones."""
        self._pool.forget()

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
    ) -> RayRun:
        """Hand the run to its coordinator; returns once its first nodes are submitted (see `Executor.start`).

        A coordinator that died since the last run (killed, or its node lost) is replaced; the run goes to a live
        sibling meanwhile, or, with one coordinator, waits for the replacement."""
        import ray

        from engine.execution.ray.coordinator import RunOptions

        run_id = run_id or new_run_id()
        self._ensure_ray()
        index, coordinator = self._pool.for_run(run_id)
        if self._breakers is None and _uses_breakers(plan):
            self._breakers = RayBreakerClient(breaker_actor(self.breaker_policy))
        options = RunOptions(
            fail_fast=fail_fast,
            cache_dir=cache_dir,
            check_types=self.check_types,
            started_delay_s=self.started_delay_s,
            persist_nodes=persist_nodes,
            breakers=self._breakers,
            sink=sink,
            max_retries=self.max_retries,
            cache_scope=cache_scope,
            max_in_flight=self.max_in_flight,
            policy=policy,
            map_results=map_results,
            config=node_config_for(self._settings) if self._settings is not None else None,
            secrets=secrets,
        )
        args = _detached_args(plan, inputs, cached) if detached else self._owned_args(plan, inputs, cached)
        try:
            ray.get(coordinator.start_run.remote(run_id, *args, options))
        except ray.exceptions.RayActorError:
            self._pool.lost(index)
            _, coordinator = self._pool.for_run(run_id)
            ray.get(coordinator.start_run.remote(run_id, *args, options))
        return RayRun(coordinator, run_id, plan)

    def _owned_args(
        self, plan: Plan, inputs: Mapping[str, Any], cached: Mapping[str, CacheHit] | None
    ) -> tuple[Any, dict[str, Any], dict[str, tuple[str, dict[str, Any]]]]:
        """The plan shipped once; big inputs and cached values put in the object store by this process."""
        import ray

        put_inputs = {k: ray.put(v) if approx_size(v) > _PUT_ABOVE_BYTES else v for k, v in inputs.items()}
        hits: dict[str, tuple[str, dict[str, Any]]] = {}
        for node_id, hit in (cached or {}).items():
            refs = dict(hit.refs) if hit.refs else {port: ray.put(v) for port, v in hit.values.items()}
            hits[node_id] = (hit.level, refs)
        return self._plans.ship(plan), put_inputs, hits


def _detached_args(
    plan: Plan, inputs: Mapping[str, Any], cached: Mapping[str, CacheHit] | None
) -> tuple[Plan, dict[str, Any], dict[str, tuple[str, dict[str, Any]]]]:
    """Everything inline: objects this process put would be lost with it, and a detached run outlives it."""
    hits = {node: (hit.level, dict(hit.values)) for node, hit in (cached or {}).items()}
    return plan, dict(inputs), hits


def _uses_breakers(plan: Plan) -> bool:
    from engine.execution.breaker import breaker_key

    def walk(p: Plan) -> bool:
        for planned in p.nodes:
            for member in planned.members or (planned,):
                if member.spec is not None and breaker_key(member.type_id, member.spec.tags) is not None:
                    return True
            if planned.subplan is not None and walk(planned.subplan):
                return True
        return False

    return walk(plan)
