"""One run inside the coordinator actor: submission, completion, timeouts, cancellation and maps.

See `engine.execution.ray.coordinator` for the actor that hosts these runs. Every method runs on the actor's
event loop, so no locking is needed.

**Timeouts.** `timeout_s` limits each attempt of a node. The coordinator times the attempt its task reports
running (`node.started`, or `node.retrying` plus the backoff for the engine's retries inside the task) and
cancels the task when the attempt exceeds it: a cancelled task cannot go on retrying, so when the node's
retry policy allows another attempt, the coordinator records the timed-out one as failed (`node.retrying`)
and, after the backoff, submits the node again starting at the next attempt number, with the full timeout
(`rerun_after_timeout`). The nodes that read such a node wait for its last task (`until_settled`): a task
submitted again has other output refs. Class nodes are not rerun: Ray cannot interrupt an actor's running
task.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from collections.abc import Mapping
from typing import Any

from engine.compile.plan import Const, InputRef, NodeRef, Plan, PlannedNode, element_key, flatten
from engine.execution.events import Event, EventLog
from engine.execution.mapping import (
    MapLayout,
    element_inputs,
    element_prefix,
    is_map,
    map_items,
    map_layout,
    map_persist_args,
)
from engine.execution.nodeconfig import RUN_COORDINATOR
from engine.execution.ray.completions import CompletionTracker
from engine.execution.ray.iopool import PoolMember, runs_on_pool
from engine.execution.ray.memory import TRIM_AFTER_NODES, release_free_memory
from engine.execution.ray.remote import (
    COORDINATOR_NAME,
    RemoteRunResult,
    RunOptions,
    shippable,
)
from engine.execution.ray.runtime_envs import SerializedEnvs
from engine.execution.ray.submit import NodeRemotes
from engine.execution.ray.wire import TaskFields, Templates, pack, pack_task, unpack_meta
from engine.execution.result import NodeError
from engine.execution.runstate import RunState, members_of
from engine.execution.task import (
    InputFailure,
    NodeOutcome,
    RawEvent,
    TaskSpec,
    UpstreamFailure,
    assemble_lists,
    event_base,
)
from nodes.ids import RunId
from nodes.objectstore import Location
from nodes.ray_options import actor_options_of, task_options
from nodes.states import EventType, NodeStatus, RunStatus

#: How long a finished task's own events may lag behind its result before the coordinator moves on.
EVENT_LAG_S = 5.0


class CoordinatedRun:
    """One run inside the coordinator (all methods run on the actor's event loop)."""

    def __init__(
        self,
        coordinator: Any,
        run_id: RunId,
        plan: Plan,
        inputs: Mapping[str, Any],
        cached: Mapping[str, tuple[str, Mapping[str, Any]]],
        options: RunOptions,
        metrics: Any,
        tracker: CompletionTracker,
        remotes: NodeRemotes,
        *,
        name: str = COORDINATOR_NAME,
    ) -> None:
        import ray

        self.ray = ray
        self.me = coordinator
        #: The hosting coordinator's actor name (its tasks report to it; `run.started` records it).
        self.coordinator_name = name
        #: This coordinator's actor id: tasks keep its handle by it across runs (`remote._coordinator`).
        self.coordinator_id = (ray.get_runtime_context().get_actor_id() or "") if ray.is_initialized() else ""
        self.run_id = run_id
        self.plan = plan
        self.inputs = dict(inputs)
        self.cached = dict(cached)
        if options.config and RUN_COORDINATOR in options.config:
            # Plugins' helpers that follow the run find it on the coordinator that hosts it (the options are
            # this call's own copy, unpickled here).
            options.config = {**options.config, RUN_COORDINATOR: name}
        self.options = options
        #: What a node task adds to its planned options: Ray's retries after a system fault (made once).
        self.system_retries = task_options(system_retries=options.max_retries)
        self.log = EventLog(run_id, options.sink)
        self.state = RunState(run_id, plan, self.log, metrics)
        self.out_refs: dict[str, dict[str, Any]] = {}
        self.meta_refs: dict[str, Any] = {}
        #: Nodes not submitted yet: tasks waiting for their upstream nodes, and futures of queued nodes.
        self.pending: dict[str, asyncio.Future[Any]] = {}
        #: The keys of the tasks in flight (removed when the task has been recorded).
        self.flight: set[str] = set()
        #: Waits for every task whose key starts with a prefix to be recorded (`drained`).
        self.drains: list[_Drain] = []
        #: Finished tasks whose own events are still on their way (see `finish_after_events`).
        self.finishing: dict[str, asyncio.Task[None]] = {}
        self.received: dict[str, int] = {}
        self.readers: dict[str, int] = {}
        self.keep: set[str] = set()
        self.held: dict[str, dict[int, RawEvent]] = {}
        self.arrivals: dict[str, asyncio.Event] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.timed_out: dict[str, tuple[float, int]] = {}
        #: Nodes run again when an attempt times out (`reruns_on_timeout`): their task arguments, kept for
        #: the next task, and a future done when their last task has ended (their dependents wait for it).
        self.retry_args: dict[str, list[Any]] = {}
        self.settled: dict[str, asyncio.Future[None]] = {}
        #: Timed-out attempts whose task is being cancelled, to run again: (timeout, attempt, when).
        self.reruns: dict[str, tuple[float, int, float]] = {}
        #: Nodes waiting for their backoff before they run again: the timer and what `run_again` needs.
        self.rerun_timers: dict[str, tuple[asyncio.TimerHandle, PlannedNode, str, int]] = {}
        #: The first event index of the current task of a node run again; lower ones are from its old task.
        self.event_floor: dict[str, int] = {}
        self.planned_by_key: dict[str, tuple[PlannedNode, str]] = {}
        self.actors: dict[str, Any] = {}
        self.actor_keys: set[str] = set()
        self.shipped_nodes: dict[int, tuple[PlannedNode, PlannedNode]] = {}
        self.wakeups: list[asyncio.Future[None]] = []
        #: Nodes ready to submit that wait for room in the window (`options.max_in_flight`), in plan order:
        #: (node, its inputs, prefix, the future its dependents and `binding_ref` wait for).
        self.deferred: collections.deque[tuple[PlannedNode, Mapping[str, Any], str, asyncio.Future[None]]] = (
            collections.deque()
        )
        self.stopping = False
        self.cancelled = False
        self.done: asyncio.Future[RemoteRunResult] = asyncio.get_running_loop().create_future()
        self.task_fn = remotes.task_fn
        self.submitter = remotes.submitter
        self.collect_fn = remotes.collect_fn
        self.collect_recorded_fn = remotes.collect_recorded_fn
        self.actor_class = remotes.actor_class
        self.pool = remotes.io_pool
        #: I/O-bound nodes in flight on the pool (`engine.execution.ray.iopool`): the actor each call went to.
        self.pooled: dict[str, PoolMember] = {}
        #: How often each pooled node ran again because its actor died (a system fault: `max_retries`).
        self.faults: dict[str, int] = {}
        self.tracker = tracker
        self.envs = SerializedEnvs()
        self.templates = Templates()
        self.task_envs: dict[int, tuple[PlannedNode, dict[str, Any] | None, str | None]] = {}
        self.flat_inputs: dict[int, tuple[PlannedNode, list[tuple[str, Any]], dict[str, int]]] = {}
        self.state.queued()

    # -- notification -------------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake every waiting poller."""
        for fut in self.wakeups:
            if not fut.done():
                fut.set_result(None)
        self.wakeups.clear()

    async def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        if self.log.last_seq <= after and not self.log.finished:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.wakeups.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout)
        return self.log.after(after, limit=5000), self.log.finished

    # -- submission ---------------------------------------------------------------------------------

    async def main(self) -> None:
        self.state.started(coordinator=self.coordinator_name)
        self.changed()
        try:
            self.submit_plan(self.plan, self.inputs, "")
            while True:
                running: list[asyncio.Future[Any]] = [t for t in self.pending.values() if not t.done()]
                if self.flight:
                    running.append(self.drained(""))
                if not running:
                    break
                await asyncio.wait(running)
            outputs = {}
            for name, binding in self.plan.outputs.items():
                outputs[name] = await self.binding_ref(binding, "", self.inputs)
        except BaseException as exc:  # an engine bug must still end the run, with its traceback
            for planned in self.plan.nodes:
                self.state.fail(planned, NodeStatus.FAILED, exc)
            outputs = {}
        for actor in self.actors.values():
            self.ray.kill(actor)
        status = self.state.finish(self.cancelled)
        self.changed()
        node_refs = {}
        for planned in self.plan.nodes:
            if planned.id in self.options.persist_nodes and planned.id in self.out_refs:
                node_refs[planned.id] = self.out_refs[planned.id]
        # Only the events and node states stay with a finished run (for late subscribers); the rest can go.
        self.out_refs, self.readers, self.keep, self.planned_by_key = {}, {}, set(), {}
        self.cached, self.held, self.timers, self.shipped_nodes, self.task_envs = {}, {}, {}, {}, {}
        self.flat_inputs, self.templates = {}, Templates()
        self.done.set_result(
            RemoteRunResult(
                status,
                self.state.results(),
                outputs if status is RunStatus.SUCCEEDED else {},
                self.state.started_at,
                self.state.finished_at,
                node_refs,
            )
        )
        # The result holds the node states now. A finished run stays for late subscribers (events only), and
        # every object it keeps is scanned by each collection of the coordinator's heap.
        big = len(self.state.records) >= TRIM_AFTER_NODES
        self.state.records = {}
        if big:  # what its tasks held while in flight is free now: give it back (engine.execution.ray.memory)
            release_free_memory()

    async def binding_ref(self, binding: Any, prefix: str, inputs: Mapping[str, Any]) -> Any:
        """`sync_ref`, once the node the binding reads (if any) has been submitted."""
        if isinstance(binding, NodeRef):
            key = prefix + binding.node
            if key in self.pending:
                await self.pending[key]
        elif not isinstance(binding, InputRef | Const):
            raise TypeError(f"unknown binding {binding!r}")
        return self.sync_ref(binding, prefix, inputs)

    def submit_plan(self, plan: Plan, inputs: Mapping[str, Any], prefix: str) -> None:
        # How many nodes read each node: once all of them are submitted, their tasks hold the refs and the
        # coordinator can drop its own, so small results do not pile up in its memory over a big run.
        outputs = {b.node for b in plan.outputs.values() if isinstance(b, NodeRef)}
        for node_id, readers in plan.downstream().items():
            self.readers[prefix + node_id] = len(readers)
            if node_id in outputs or (not prefix and node_id in self.options.persist_nodes):
                self.keep.add(prefix + node_id)
        for planned in plan.nodes:
            key = prefix + planned.id
            hit = self.cached.get(planned.id) if not prefix else None
            if hit is not None:
                level, refs = hit
                self.out_refs[key] = dict(refs)
                self.state.cached(planned, level)
                continue
            waits = [prefix + up for up in planned.upstream() if prefix + up in self.pending]
            if waits or is_map(planned):
                self.pending[key] = asyncio.ensure_future(self.submit_later(planned, waits, inputs, prefix))
            elif self.window_full():
                self.pending[key] = self.defer(planned, inputs, prefix)
            else:
                self.submit_ready(planned, inputs, prefix)
            if settles(planned):
                self.pending[key] = asyncio.ensure_future(self.until_settled(key, self.pending.get(key)))
        self.changed()

    async def until_settled(self, key: str, submitted: asyncio.Future[Any] | None) -> None:
        """Wait until node `key` is submitted (`submitted`, if it was not at once) and its last task ended."""
        if submitted is not None:
            await submitted
        settled = self.settled.get(key)
        if settled is not None:
            await settled

    def submit_ready(self, planned: PlannedNode, inputs: Mapping[str, Any], prefix: str) -> None:
        """Submit `planned`, whose upstream nodes are all submitted (their refs are known)."""
        args = [self.sync_ref(b, prefix, inputs) for _, b in self.flat(planned)[0]]
        self.consumed(planned, prefix)
        self.submit_node(planned, args, prefix)

    # -- the window ---------------------------------------------------------------------------------

    def window_full(self) -> bool:
        """True while the run has `options.max_in_flight` tasks in flight, or nodes already waiting for room
        (which go first: plan order is what keeps every node's upstream submitted before it)."""
        return bool(self.deferred) or len(self.flight) >= self.options.max_in_flight

    def defer(self, planned: PlannedNode, inputs: Mapping[str, Any], prefix: str) -> asyncio.Future[None]:
        """Queue `planned` until the window has room; the future is done once it has been submitted.

        Ray's core worker holds every submitted task until it ends (its spec, arguments and lease request:
        about 10 KB each), so submitting a 100,000-node fan-out at once would cost the coordinator a gigabyte.
        Nodes beyond the window wait here instead, and go as tasks end (`pump`).
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deferred.append((planned, inputs, prefix, future))
        return future

    def pump(self) -> None:
        """Submit queued nodes while the window has room (all of them, as cancelled, once the run stops)."""
        while self.deferred and (self.stopping or len(self.flight) < self.options.max_in_flight):
            planned, inputs, prefix, future = self.deferred.popleft()
            try:
                self.submit_ready(planned, inputs, prefix)
            except Exception as exc:  # an engine bug fails this node (and so its dependents), not the run
                self.out_refs.setdefault(prefix + planned.id, {})
                self.state.fail(planned, NodeStatus.FAILED, exc, prefix)
            if not future.done():
                future.set_result(None)
        self.changed()

    def consumed(self, planned: PlannedNode, prefix: str) -> None:
        """`planned`'s arguments are taken: release upstream refs nobody else will read."""
        for up in planned.upstream():
            key = prefix + up
            left = self.readers.get(key, 0) - 1
            self.readers[key] = left
            if left <= 0 and key not in self.keep:
                self.out_refs.pop(key, None)

    def sync_ref(self, binding: Any, prefix: str, inputs: Mapping[str, Any]) -> Any:
        if isinstance(binding, NodeRef):
            refs = self.out_refs.get(prefix + binding.node)
            return (
                refs.get(binding.port, UpstreamFailure(binding.node))
                if refs
                else UpstreamFailure(binding.node)
            )
        if isinstance(binding, InputRef):
            return inputs[binding.name]
        return binding.value

    async def submit_later(
        self, planned: PlannedNode, waits: list[str], inputs: Mapping[str, Any], prefix: str
    ) -> None:
        for key in waits:
            await self.pending[key]
        if not is_map(planned) and not self.stopping and self.window_full():
            await self.defer(planned, inputs, prefix)  # `pump` submits it
            return
        args = [self.sync_ref(b, prefix, inputs) for _, b in self.flat(planned)[0]]
        self.consumed(planned, prefix)
        if self.stopping:
            self.state.fail(
                planned, NodeStatus.CANCELLED, _cancelled(self.run_id, prefix + planned.id), prefix
            )
            return
        try:
            if is_map(planned):
                await self.run_map(planned, await self.map_args(planned, args), prefix)
            else:
                self.submit_node(planned, args, prefix)
        except Exception as exc:  # an engine bug fails this node (and so its dependents), not the coordinator
            self.out_refs.setdefault(prefix + planned.id, {})
            self.state.fail(planned, NodeStatus.FAILED, exc, prefix)
        self.changed()

    def submit_node(self, planned: PlannedNode, args: list[Any], prefix: str, first_attempt: int = 1) -> None:
        key = prefix + planned.id
        if self.stopping:
            self.state.fail(planned, NodeStatus.CANCELLED, _cancelled(self.run_id, key), prefix)
            return
        out_ports = planned.outputs
        # Only ObjectRefs need to be task arguments (Ray resolves them); other values ride in the spec,
        # which is cheaper than one more argument for Ray to serialize.
        ref_keys: list[str] = []
        ref_args: list[Any] = []
        consts: dict[str, Any] = {}
        flat, lists = self.flat(planned)
        for (port_key, _), value in zip(flat, args, strict=True):
            if isinstance(value, self.ray.ObjectRef):
                ref_keys.append(port_key)
                ref_args.append(value)
            else:
                consts[port_key] = value
        persist = not prefix and planned.id in self.options.persist_nodes
        if first_attempt != 1:  # a node run again after a timed-out attempt (rare): its spec travels whole
            packed = pack(
                self.task_spec(
                    self.shipped(planned), tuple(ref_keys), consts, lists, prefix, persist, first_attempt
                )
            )
        elif (template := self.templates.get(planned, self.task_spec)) is not None:
            packed = pack_task(
                template,
                TaskFields(planned.id, planned.cache_key, tuple(ref_keys), consts, lists, prefix, persist),
            )
        else:
            packed = pack(
                self.task_spec(self.shipped(planned), tuple(ref_keys), consts, lists, prefix, persist)
            )
        options = dict(planned.ray_options)
        options.setdefault("name", f"{self.plan.name}/{key}:{planned.type_id}")
        runtime_env, serialized_env = self.task_env(planned)
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        else:
            options.pop("runtime_env", None)
        options["num_returns"] = len(out_ports) + 1
        if planned.spec is not None and planned.spec.kind == "class":
            actor = self.node_actor(planned, options)
            self.actor_keys.add(key)
            refs = actor.run.options(num_returns=len(out_ports) + 1).remote(packed, *ref_args)
        elif runs_on_pool(planned):
            member = self.pooled[key] = self.pool.acquire(runtime_env, serialized_env)
            refs = member.handle.run.options(num_returns=len(out_ports) + 1, name=options["name"]).remote(
                packed, *ref_args
            )
        else:
            options.update(self.system_retries)
            refs = self.submit_task(options, serialized_env, [packed, *ref_args])
        if not out_ports:
            refs = [refs]
        self.out_refs[key] = dict(zip(out_ports, refs[:-1], strict=True))
        self.meta_refs[key] = refs[-1]
        self.planned_by_key[key] = (planned, prefix)
        if settles(planned):
            self.retry_args[key] = args
            if key not in self.settled:
                self.settled[key] = asyncio.get_running_loop().create_future()
        self.flight.add(key)
        for drain in self.drains:
            if key.startswith(drain.prefix):
                drain.count += 1
        self.tracker.add(refs[-1], functools.partial(self.on_completed, planned, prefix))

    def task_spec(
        self,
        node: PlannedNode,
        arg_keys: tuple[str, ...] = (),
        consts: Mapping[str, Any] | None = None,
        lists: Mapping[str, int] | None = None,
        prefix: str = "",
        persist: bool = False,
        first_attempt: int = 1,
    ) -> TaskSpec:
        """The spec of a task of `node` in this run (with the defaults, the prototype of its template)."""
        return TaskSpec(
            run_id=self.run_id,
            workflow=self.plan.name,
            node=node,
            arg_keys=arg_keys,
            consts=consts or {},
            out_ports=tuple(node.outputs),
            check_types=self.options.check_types,
            cache_dir=self.options.cache_dir,
            persist=persist,
            dynamic_cache=bool(self.options.cache_dir) and node.cache and node.deterministic,
            started_delay_s=0.0 if node.timeout_s else self.options.started_delay_s,
            breakers=self.options.breakers,
            extra={
                "prefix": prefix,
                "coordinator": self.coordinator_name,
                "coordinator_id": self.coordinator_id,
            },
            lists=lists or {},
            cache_scope=self.options.cache_scope,
            first_attempt=first_attempt,
            policy=self.options.policy,
            workflow_version=self.plan.version,
            config=self.options.config,
            secrets=self.options.secrets,
        )

    def flat(self, planned: PlannedNode) -> tuple[list[tuple[str, Any]], dict[str, int]]:
        """`flatten(planned.inputs)`: list bindings spread into their elements, made once per planned node."""
        found = self.flat_inputs.get(id(planned))
        if found is None or found[0] is not planned:
            found = (planned, *flatten(planned.inputs))
            self.flat_inputs[id(planned)] = found
        return found[1], found[2]

    async def map_args(self, planned: PlannedNode, args: list[Any]) -> dict[str, Any]:
        """A map node's argument per port: its list bindings' elements fetched and assembled here, since a
        map's inputs are control values the coordinator reads anyway."""
        flat, lists = self.flat(planned)
        by_key = {key: value for (key, _), value in zip(flat, args, strict=True)}
        for port, length in lists.items():
            for index in range(length):
                key = element_key(port, index)
                if isinstance(by_key[key], self.ray.ObjectRef):
                    try:
                        by_key[key] = await by_key[key]
                    except Exception:  # the element's task died: the list (and so the map) fails
                        by_key[key] = UpstreamFailure(planned.id)
        by_key = assemble_lists(planned, by_key, lists, self.plan.name)
        return {port: by_key[port] for port in planned.inputs}

    def shipped(self, planned: PlannedNode) -> PlannedNode:
        """`shippable(planned)`, made once per planned node of the run (map elements share theirs)."""
        found = self.shipped_nodes.get(id(planned))
        if found is None or found[0] is not planned:
            found = (planned, shippable(planned))
            self.shipped_nodes[id(planned)] = found
        return found[1]

    def task_env(self, planned: PlannedNode) -> tuple[dict[str, Any] | None, str | None]:
        """The plugin runtime env of `planned`'s tasks (None for none) and its serialized form, made once per
        planned node."""
        found = self.task_envs.get(id(planned))
        if found is None or found[0] is not planned:
            env = planned.ray_options.get("runtime_env") or None
            found = (planned, env, self.envs.get(env) if env else None)
            self.task_envs[id(planned)] = found
        return found[1], found[2]

    def submit_task(self, options: dict[str, Any], serialized: str | None, args: list[Any]) -> Any:
        # `.options(...)` validates and copies on every call, which costs more than submitting a tiny task;
        # the options here are built by the planner, so they go to the `TaskSubmitter`, with a plugin's
        # runtime env serialized once per distinct env (`task_env`).
        if "runtime_env" in options:
            if serialized is None:  # a Ray without the serialization helper
                return self.task_fn.options(**options).remote(*args)
            options = {k: v for k, v in options.items() if k != "runtime_env"}
        return self.submitter.submit(options, serialized, args)

    def map_persist(
        self, planned: PlannedNode, prefix: str, port: str
    ) -> tuple[str | Location, str, str, str] | None:
        return map_persist_args(self.options.cache_dir, planned, not prefix, port)

    def node_actor(self, planned: PlannedNode, options: dict[str, Any]) -> Any:
        assert planned.spec is not None
        actor_key = f"{planned.type_id}#{planned.spec.code_version}"
        if actor_key not in self.actors:
            actor_options = actor_options_of(options, max_concurrency=1)
            self.actors[actor_key] = self.actor_class.options(**actor_options).remote()
        return self.actors[actor_key]

    # -- completion ---------------------------------------------------------------------------------

    def on_completed(self, planned: PlannedNode, prefix: str, result: Any) -> None:
        """A task's meta (or the exception Ray raised for it) is here (on the event loop, in batches)."""
        if isinstance(result, self.ray.exceptions.RayTaskError):
            result = result.as_instanceof_cause()  # type: ignore[no-untyped-call]
        result = unpack_meta(result)
        key = prefix + planned.id
        if self.pooled and key in self.pooled:
            member = self.pooled.pop(key)
            self.pool.release(member)
            if isinstance(result, self.ray.exceptions.RayActorError) and self.rerun_after_fault(
                planned, prefix, member, result
            ):
                return
        if self.reruns and key in self.reruns and self.rerun_after_timeout(planned, prefix, result):
            return
        if not isinstance(result, BaseException) and self.received.get(key, 0) < result.events_sent:
            self.finishing[key] = asyncio.ensure_future(self.finish_after_events(planned, prefix, result))
            return
        self.finish_task(planned, prefix, result)
        self.changed()

    async def finish_after_events(self, planned: PlannedNode, prefix: str, meta: Any) -> None:
        await self.events_arrived(prefix + planned.id, meta.events_sent)
        self.finish_task(planned, prefix, meta)
        self.changed()

    def finish_task(self, planned: PlannedNode, prefix: str, result: Any) -> None:
        """Record a finished task: its `TaskMeta`, or the exception Ray raised for it."""
        key = prefix + planned.id
        self.cancel_timer(key)
        try:
            if isinstance(result, BaseException):
                self.task_error(planned, prefix, result)
            else:
                self.state.complete(result, prefix)
                if result.failed and self.options.fail_fast:
                    self.stop()
        except Exception as exc:  # an engine bug must not leave the node running forever
            self.state.fail(planned, NodeStatus.FAILED, exc, prefix)
        self.meta_refs.pop(key, None)  # finished: nothing left to cancel
        in_flight = key in self.flight
        self.flight.discard(key)
        if self.received:  # these stay empty unless tasks send events, and most tiny ones do not
            self.received.pop(key, None)
        if self.arrivals:
            self.arrivals.pop(key, None)
        if self.finishing:
            self.finishing.pop(key, None)
        if in_flight and self.drains:
            self.release_drains(key)
        if self.settled:
            self.node_settled(key)
        if self.deferred:
            self.pump()

    def node_settled(self, key: str) -> None:
        """Node `key`'s last task has ended: its dependents may read its outputs (`until_settled`)."""
        future = self.settled.pop(key, None)
        self.retry_args.pop(key, None)
        self.event_floor.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def rerun_after_timeout(self, planned: PlannedNode, prefix: str, result: Any) -> bool:
        """The task of a timed-out attempt that is to run again has ended (`on_timeout`): record the attempt as
        failed, forget the task and submit the node again after its backoff (`run_again`).

        Returns False, leaving the result to be recorded as usual, when the task finished by itself before
        the cancel reached it, or when the run is stopping."""
        key = prefix + planned.id
        timeout_s, attempt, at = self.reruns.pop(key)
        if not isinstance(result, BaseException) or self.stopping:
            return False
        from engine.errors import NodeTimeoutError

        exc = NodeTimeoutError(self.plan.name, key, timeout_s, attempt)
        self.run_later(planned, prefix, attempt, exc, at, planned.retry.delay(attempt))
        return True

    def rerun_after_fault(
        self, planned: PlannedNode, prefix: str, member: PoolMember, exc: BaseException
    ) -> bool:
        """The pool actor `member` running `planned` died (a system fault, as a dead task worker): drop it
        from the pool and run the node again on another actor at once, as its next attempt, at most
        `max_retries` times. Returns False, leaving the error to be recorded as usual, once the node has used
        them up or the run is stopping."""
        key = prefix + planned.id
        self.pool.discard(member)
        faults = self.faults.get(key, 0)
        if self.stopping or faults >= self.options.max_retries or key not in self.retry_args:
            return False
        self.faults[key] = faults + 1
        self.reruns.pop(key, None)  # a timed-out attempt whose actor died meanwhile: it runs again once
        record = self.state.records.get(key)
        attempt = max(record.attempts if record is not None else 0, self.rerun_attempt(key))
        self.run_later(planned, prefix, attempt, exc, time.time(), 0.0)
        return True

    def rerun_attempt(self, key: str) -> int:
        """The first attempt number of node `key`'s current task (above 1 for a task run again)."""
        floor = self.event_floor.get(key, 0)
        return (floor >> 32) + 1

    def run_later(
        self, planned: PlannedNode, prefix: str, attempt: int, exc: BaseException, at: float, delay: float
    ) -> None:
        """Attempt `attempt` of `planned` failed with `exc` and its task is over, but the node is not:
        record `node.retrying`, forget the task and submit the node again after `delay` (`run_again`)."""
        key = prefix + planned.id
        payload = {
            "error": type(exc).__name__,
            "message": str(exc),
            "delay_s": delay,
            "failed_attempt": attempt,
        }
        self.state.task_events([(EventType.NODE_RETRYING, planned.id, attempt + 1, at, payload)], prefix)
        # The cancelled task is over (as in `finish_task`), but the node is not: it stays unsettled.
        self.cancel_timer(key)
        self.meta_refs.pop(key, None)
        self.held.pop(key, None)
        self.arrivals.pop(key, None)
        self.finishing.pop(key, None)
        # The next task numbers its events from here: late ones of the cancelled task are dropped (`report`).
        self.received[key] = self.event_floor[key] = event_base(attempt + 1)
        in_flight = key in self.flight
        self.flight.discard(key)
        if in_flight and self.drains:
            self.release_drains(key)
        handle = asyncio.get_running_loop().call_later(delay, self.run_again, key)
        self.rerun_timers[key] = (handle, planned, prefix, attempt + 1)
        if self.deferred:
            self.pump()
        self.changed()

    def run_again(self, key: str) -> None:
        """Submit node `key` again after a timed-out attempt (see `rerun_after_timeout`)."""
        _handle, planned, prefix, attempt = self.rerun_timers.pop(key)
        try:
            if self.stopping:
                self.state.fail(planned, NodeStatus.CANCELLED, _cancelled(self.run_id, key), prefix)
            else:
                self.submit_node(planned, self.retry_args[key], prefix, first_attempt=attempt)
        except Exception as exc:  # an engine bug fails this node (and so its dependents), not the run
            self.out_refs[key] = {}
            self.state.fail(planned, NodeStatus.FAILED, exc, prefix)
        if key not in self.flight:  # not submitted: the node has ended
            self.node_settled(key)
        self.changed()

    def drained(self, prefix: str) -> asyncio.Future[None]:
        """A future done once no task whose key starts with `prefix` is in flight (including tasks submitted
        after this call).

        A count per waiting prefix instead of a future per task: a run of a thousand tiny nodes would
        otherwise create, resolve and wait for a thousand futures (issue 4, W1)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        count = sum(1 for key in self.flight if key.startswith(prefix))
        if count:
            self.drains.append(_Drain(prefix, count, future))
        else:
            future.set_result(None)
        return future

    def release_drains(self, finished: str) -> None:
        """Count the task `finished` out of the `drained` waits it belongs to; resolve those it ends."""
        for drain in self.drains:
            if finished.startswith(drain.prefix):
                drain.count -= 1
                if drain.count <= 0 and not drain.future.done():
                    drain.future.set_result(None)
        self.drains = [drain for drain in self.drains if not drain.future.done()]

    def task_error(self, planned: PlannedNode, prefix: str, exc: BaseException) -> None:
        key = prefix + planned.id
        if key in self.timed_out:
            from engine.errors import NodeTimeoutError

            timeout_s, attempt = self.timed_out[key]
            self.state.fail(
                planned, NodeStatus.FAILED, NodeTimeoutError(self.plan.name, key, timeout_s, attempt), prefix
            )
            if self.options.fail_fast:
                self.stop()
            return
        for up in planned.upstream():
            record = self.state.records.get(prefix + up) or self.state.records.get(
                prefix + _last_member(up, self.planned_by_key, prefix)
            )
            if record is not None and record.status in (NodeStatus.FAILED, NodeStatus.CANCELLED):
                status = NodeStatus.CANCELLED if record.status is NodeStatus.CANCELLED else NodeStatus.FAILED
                from engine.errors import UpstreamFailedError

                self.state.fail(planned, status, UpstreamFailedError(key, prefix + up), prefix)
                return
        if self.stopping:
            self.state.fail(planned, NodeStatus.CANCELLED, _cancelled(self.run_id, key), prefix)
            return
        self.state.fail(
            planned, NodeStatus.FAILED, exc, prefix
        )  # e.g. the worker died more often than retried
        if self.options.fail_fast:
            self.stop()

    async def events_arrived(self, key: str, expected: int) -> None:
        # A task's fire-and-forget events can arrive after its result; wait so events stay in order.
        if self.received.get(key, 0) >= expected:
            return
        arrival = self.arrivals.setdefault(key, asyncio.Event())
        deadline = time.monotonic() + EVENT_LAG_S
        while self.received.get(key, 0) < expected and time.monotonic() < deadline:
            arrival.clear()
            try:
                await asyncio.wait_for(arrival.wait(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                break

    def report(self, prefix: str, key: str, index: int, events: list[RawEvent]) -> None:
        if self.event_floor and index < self.event_floor.get(key, 0):
            return  # a late event of a task cancelled after a timed-out attempt; its node runs again
        # Calls to a concurrent actor may run out of order: hold events until the ones before them came.
        held = self.held.setdefault(key, {})
        for offset, event in enumerate(events):
            held[index + offset] = event
        ready: list[RawEvent] = []
        nxt = self.received.get(key, 0)
        while nxt in held:
            ready.append(held.pop(nxt))
            nxt += 1
        self.received[key] = nxt
        if not held:
            del self.held[key]
        if key in self.arrivals:
            self.arrivals[key].set()
        if not ready:
            return
        events = ready
        self.state.task_events(events, prefix)
        found = self.planned_by_key.get(key)
        if found is not None and found[0].timeout_s:
            for type_, _node, attempt, at, payload in events:
                if type_ == EventType.NODE_STARTED:
                    self.arm_timer(key, found[0].timeout_s, attempt or 1, at)
                elif type_ == EventType.NODE_RETRYING:  # the next attempt starts after the backoff delay
                    self.arm_timer(
                        key, found[0].timeout_s, attempt or 1, at + float(payload.get("delay_s", 0.0))
                    )
        self.changed()

    # -- timeouts and cancellation ------------------------------------------------------------------

    def arm_timer(self, key: str, timeout_s: float, attempt: int, at: float) -> None:
        self.cancel_timer(key)
        delay = max(at + timeout_s - time.time(), 0.0)
        loop = asyncio.get_running_loop()
        self.timers[key] = loop.call_later(delay, self.on_timeout, key, timeout_s, attempt)

    def cancel_timer(self, key: str) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def on_timeout(self, key: str, timeout_s: float, attempt: int) -> None:
        ref = self.meta_refs.get(key)
        if ref is None:
            return
        if key in self.retry_args and not self.stopping:
            from engine.errors import NodeTimeoutError

            planned = self.planned_by_key[key][0]
            if planned.retry.should_retry(NodeTimeoutError(self.plan.name, key, timeout_s, attempt), attempt):
                self.reruns[key] = (timeout_s, attempt, time.time())  # run again once the cancel is confirmed
                self.cancel_ref(key, ref)
                return
        self.timed_out[key] = (timeout_s, attempt)
        self.cancel_ref(key, ref)

    def cancel_ref(self, key: str, ref: Any) -> None:
        # A cooperative cancel only interrupts Python bytecode (not a blocking call such as sleep or I/O),
        # so task workers are killed outright; actor tasks cannot be, and get the cooperative cancel.
        with contextlib.suppress(Exception):  # already finished
            self.ray.cancel(ref, force=key not in self.actor_keys and key not in self.pooled, recursive=True)

    def stop(self) -> None:
        """Cancel every unfinished task and submit nothing more (fail-fast and user cancel)."""
        if self.stopping:
            return
        self.stopping = True
        for key, ref in self.meta_refs.items():
            self.cancel_ref(key, ref)  # a no-op for tasks that already finished
        for key, (handle, *_rest) in list(self.rerun_timers.items()):
            handle.cancel()
            self.run_again(key)  # records the node as cancelled
        self.pump()  # queued nodes are recorded as cancelled, never submitted

    def cancel(self) -> None:
        self.cancelled = True
        self.stop()
        self.changed()

    # -- map ----------------------------------------------------------------------------------------

    async def run_map(self, planned: PlannedNode, args: dict[str, Any], prefix: str) -> None:
        """Run map node `planned`: its sub-plan once per item of its list, then the list of their results."""
        layout = map_layout(planned)
        sub = planned.subplan
        assert sub is not None
        key = prefix + planned.id
        items = await self.map_list(planned, layout, args, prefix)
        if items is None:  # the map has ended already: its list failed, or was skipped
            return
        started = time.time()
        self.state.task_events([(EventType.NODE_STARTED, planned.id, 1, started, {})], prefix)
        element_refs = []
        for index, item in enumerate(items):
            sub_prefix = element_prefix(planned.id, index, prefix)
            self.state.add_nodes(sub.nodes, sub_prefix)
            sub_inputs = element_inputs(layout, sub, index, item, args)
            self.submit_plan(sub, sub_inputs, sub_prefix)
            element_refs.append(
                await self.binding_ref(sub.outputs[layout.sub_output], sub_prefix, sub_inputs)
            )
        persist = self.map_persist(planned, prefix, layout.out_port)
        recorded: Any = None  # a durable run's top-level map: the ref saying whether its list is kept
        if self.options.map_results is not None and not prefix:
            record = (self.options.map_results, self.run_id, layout.out_port)
            collected, recorded = self.collect_recorded_fn.options(
                **task_options(name=f"{self.plan.name}/{key}:collect"), num_returns=2
            ).remote(planned.id, persist, record, *element_refs)
        else:
            collected = self.collect_fn.options(
                **task_options(name=f"{self.plan.name}/{key}:collect")
            ).remote(planned.id, persist, *element_refs)
        self.out_refs[key] = {layout.out_port: collected}
        # The map node ends when every element node has (and nested maps, and element nodes submitted later).
        while True:
            element_tasks: list[asyncio.Future[Any]] = [
                t for k, t in self.pending.items() if k.startswith(key + "[") and not t.done()
            ]
            if any(k.startswith(key + "[") for k in self.flight):
                element_tasks.append(self.drained(key + "["))
            if not element_tasks:
                break
            await asyncio.wait(element_tasks)
        await self.end_map(planned, prefix, layout.out_port, started, recorded)

    async def map_list(
        self, planned: PlannedNode, layout: MapLayout, args: Mapping[str, Any], prefix: str
    ) -> list[Any] | None:
        """The items map node `planned` runs its sub-plan for (its list port's value, each item coerced as
        the compiler recorded); None once the map has ended without running any: its list failed, could not
        be given to the sub-plan, or was skipped (the outcome is recorded here)."""
        key = prefix + planned.id
        items_ref = args[layout.list_port]
        try:
            items = await items_ref if isinstance(items_ref, self.ray.ObjectRef) else items_ref
        except Exception as exc:
            self.out_refs[key] = {layout.out_port: UpstreamFailure(planned.id)}
            self.task_error(planned, prefix, exc)
            return None
        from nodes import SKIP

        if not isinstance(items, UpstreamFailure) and items is not SKIP:
            try:
                items = map_items(planned, layout, items, self.plan.name, key)
            except Exception as exc:  # a PortTypeError: an element the item coercion cannot convert
                items = InputFailure(planned.id, exc)
        if isinstance(items, InputFailure):  # the list could not be given to the sub-workflow
            self.out_refs[key] = {layout.out_port: UpstreamFailure(planned.id)}
            now = time.time()
            error = NodeError.from_exception(planned.id, 1, items.error)
            self.state.outcome(
                NodeOutcome(planned.id, planned.type_id, NodeStatus.FAILED, 1, now, now, error), prefix
            )
            if self.options.fail_fast:
                self.stop()
            return None
        if isinstance(items, UpstreamFailure) or items is SKIP:
            self.out_refs[key] = {layout.out_port: items if items is SKIP else UpstreamFailure(planned.id)}
            if items is SKIP:
                self.state.outcome(NodeOutcome(planned.id, planned.type_id, NodeStatus.SKIPPED), prefix)
            else:
                from engine.errors import UpstreamFailedError

                upstream = items.node if isinstance(items, UpstreamFailure) else "?"
                self.state.fail(planned, NodeStatus.FAILED, UpstreamFailedError(key, upstream), prefix)
            return None
        return list(items)

    async def end_map(
        self, planned: PlannedNode, prefix: str, out_port: str, started: float, recorded: Any
    ) -> None:
        """Record how map node `planned` ended once all its element nodes have: failed (or cancelled) with
        its first failed element, failed when a durable run could not keep its list (`recorded`, see
        `run_map`), else succeeded."""
        key = prefix + planned.id
        failed = [
            r.node
            for r in self.state.records.values()
            if r.node.startswith(key + "[") and r.status in (NodeStatus.FAILED, NodeStatus.CANCELLED)
        ]
        if failed:
            from engine.errors import UpstreamFailedError

            error = NodeError.from_exception(key, 1, UpstreamFailedError(key, failed[0]))
            status = (
                NodeStatus.CANCELLED
                if self.stopping and self.state.records[failed[0]].status is not NodeStatus.FAILED
                else NodeStatus.FAILED
            )
            self.state.outcome(
                NodeOutcome(planned.id, planned.type_id, status, 1, started, time.time(), error), prefix
            )
        elif recorded is not None and (unkept := await self.unkept(recorded)) is not None:
            # The list could not be made durable: the map node fails (its result must be durable before its
            # success is recorded), and so do the nodes that read it.
            self.out_refs[key] = {out_port: UpstreamFailure(planned.id)}
            error = NodeError.from_exception(key, 1, unkept)
            self.state.outcome(
                NodeOutcome(planned.id, planned.type_id, NodeStatus.FAILED, 1, started, time.time(), error),
                prefix,
            )
            if self.options.fail_fast:
                self.stop()
        else:
            self.state.outcome(
                NodeOutcome(planned.id, planned.type_id, NodeStatus.SUCCEEDED, 1, started, time.time()),
                prefix,
            )

    async def unkept(self, recorded: Any) -> BaseException | None:
        """Why a map's list was not kept by the run's `map_results` (`recorded`: the second return of its
        `collect_recorded` task), or None once it is."""
        try:
            error: BaseException | None = await recorded
        except Exception as exc:  # the collecting task itself failed (e.g. its worker died every time)
            return exc
        return error


def settles(planned: PlannedNode) -> bool:
    """Whether the nodes reading `planned` wait until its last task has ended (`until_settled`): a node the
    coordinator may submit again, after a timed-out attempt or the death of its pool actor, whose dependents
    must never hold the refs of a task it gave up on."""
    return (bool(planned.timeout_s) and reruns_on_timeout(planned)) or runs_on_pool(planned)


def reruns_on_timeout(planned: PlannedNode) -> bool:
    """Whether the coordinator runs `planned` again when an attempt times out (a node with a timeout and
    retries, run as a task: Ray cannot interrupt an actor's running task)."""
    return (
        bool(planned.timeout_s)
        and planned.retry.max_attempts > 1
        and not (planned.spec is not None and planned.spec.kind == "class")
    )


class _Drain:
    """One `drained` wait: its prefix, how many of its tasks are in flight, and the future to resolve."""

    __slots__ = ("count", "future", "prefix")

    def __init__(self, prefix: str, count: int, future: asyncio.Future[None]) -> None:
        self.prefix = prefix
        self.count = count
        self.future = future


def _last_member(up: str, planned_by_key: Mapping[str, tuple[PlannedNode, str]], prefix: str) -> str:
    found = planned_by_key.get(prefix + up)
    if found is None:
        return up
    return members_of(found[0])[-1].id


def _cancelled(run_id: RunId, node: str) -> BaseException:
    from engine.errors import RunCancelledError

    return RunCancelledError(run_id, node)
