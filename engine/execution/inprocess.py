"""`InProcessExecutor`: runs a plan in this process, one node at a time, with the semantics of the Ray executor.

It exists for tests and debugging (a breakpoint in a node just works). Same task wrapper, same bookkeeping
(`RunState`), same events; the differences are physical only: nodes run one after another in a background
thread, a timed-out attempt is abandoned (a thread cannot be killed) rather than cancelled, and `cancel()`
stops the run before its next node. As on Ray, `timeout_s` limits each attempt: an attempt that exceeds it
counts as a failed attempt (`node.retrying`, then the next attempt with the full timeout) while the node's
retry policy allows another one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.cache.result_cache import CacheHit
from engine.compile.plan import Const, InputRef, NodeRef, Plan, PlannedNode, flatten
from engine.errors import NodeTimeoutError, PortTypeError, RunCancelledError, UpstreamFailedError
from engine.execution.breaker import CircuitBreakers, LocalBreakerClient
from engine.execution.events import Event, EventLog, EventSink
from engine.execution.mapping import (
    MapResultRecorder,
    element_inputs,
    element_prefix,
    is_map,
    map_items,
    map_layout,
    map_persist_args,
    persist_map_result,
)
from engine.execution.result import NodeError, RunResult
from engine.execution.runstate import RunState
from engine.execution.task import (
    InputFailure,
    NodeOutcome,
    RawEvent,
    TaskEmitter,
    TaskMeta,
    TaskSpec,
    UpstreamFailure,
    assemble_lists,
    execute_task,
)
from engine.secrets.refs import RunSecrets
from nodes import SKIP
from nodes.access import AccessPolicy
from nodes.ids import RunId, new_run_id
from nodes.objectstore import Location
from nodes.states import EventType, NodeStatus, RunStatus

Values = dict[tuple[str, str], Any]


class LocalRun:
    """One run executing in a background thread of this process; a `RunSource` for `RunHandle`."""

    def __init__(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        *,
        run_id: RunId | None = None,
        fail_fast: bool = False,
        cached: Mapping[str, CacheHit] | None = None,
        cache_dir: str | Location | None = None,
        breakers: CircuitBreakers | None = None,
        check_types: bool = True,
        sink: EventSink | None = None,
        persist_nodes: frozenset[str] = frozenset(),
        cache_scope: str = "",
        policy: AccessPolicy | None = None,
        map_results: MapResultRecorder | None = None,
        secrets: RunSecrets | None = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.secrets = secrets
        self.persist_nodes = persist_nodes
        #: Where a durable run keeps its top-level map nodes' results (`engine.execution.mapping`).
        self.map_results = map_results
        self.cache_scope = cache_scope
        #: What the run's file and network nodes may reach; without one, no file and no internal address.
        self.policy = policy if policy is not None else AccessPolicy()
        self.plan = plan
        self.inputs = dict(inputs)
        self.fail_fast = fail_fast
        self.cached = dict(cached or {})
        self.cache_dir = cache_dir
        self.breakers = LocalBreakerClient(breakers) if breakers is not None else None
        self.check_types = check_types
        self.log = EventLog(self.run_id, sink)
        self.state = RunState(self.run_id, plan, self.log)
        self._cond = threading.Condition()
        self._cancelled = threading.Event()
        self._stop = False
        self._result: RunResult | None = None
        #: Output values of every node that ran (or was cached), for the result cache's memory level.
        self.values: Values = {}
        #: Class-node instances of this run (setup() runs once per node type, like a node actor).
        self.instances: dict[str, Any] = {}
        with self._cond:
            self.state.queued()
        self._thread = threading.Thread(target=self._main, name=f"rayweave-run-{self.run_id}", daemon=True)

    def start(self) -> LocalRun:
        """Start the run's thread; returns self."""
        self._thread.start()
        return self

    # -- RunSource ----------------------------------------------------------------------------------

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Events after `after`, waiting up to `timeout` seconds for the first one."""
        with self._cond:
            if self.log.last_seq <= after and not self.log.finished:
                self._cond.wait(timeout)
            return self.log.after(after), self.log.finished

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run's thread to finish and return the result."""
        self._thread.join(timeout)
        if self._result is None:
            raise TimeoutError(f"run {self.run_id!r} did not finish within {timeout} s; call result() again")
        return self._result

    def cancel(self) -> None:
        """Stop before the next node; the run ends cancelled."""
        self._cancelled.set()

    # -- running ------------------------------------------------------------------------------------

    def _locked(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._cond:
            out = fn(*args, **kwargs)
            self._cond.notify_all()
            return out

    def _main(self) -> None:
        self._locked(self.state.started)
        try:
            values = self._run_plan(self.plan, self.inputs, "")
        except BaseException as exc:  # an engine bug must still end the run, with its traceback
            for planned in self.plan.nodes:
                self._locked(self.state.fail, planned, NodeStatus.FAILED, exc)
            values = {}
        outputs = {}
        for name, binding in self.plan.outputs.items():
            value = _binding_value(binding, values, self.inputs)
            if not isinstance(value, UpstreamFailure):
                outputs[name] = value
        status = self._locked(self.state.finish, self._cancelled.is_set())
        self.values = values
        self._result = RunResult(
            run_id=self.run_id,
            workflow=self.plan.name,
            status=status,
            outputs=outputs if status is RunStatus.SUCCEEDED else {},
            nodes=self.state.results(),
            started_at=self.state.started_at,
            finished_at=self.state.finished_at,
        )
        with self._cond:
            self._cond.notify_all()

    def _run_plan(self, plan: Plan, inputs: Mapping[str, Any], prefix: str) -> Values:
        values: Values = {}
        for planned in plan.nodes:
            if self._cancelled.is_set() or self._stop:
                break
            hit = self.cached.get(planned.id) if not prefix else None
            if hit is not None:
                for port, value in _hit_values(hit).items():
                    values[(planned.id, port)] = value
                self._locked(self.state.cached, planned, hit.level)
                continue
            flat, lists = flatten(planned.inputs)
            args = [_binding_value(binding, values, inputs) for _, binding in flat]
            meta: TaskMeta | None
            if is_map(planned):
                map_args = _map_args(planned, flat, lists, args, plan.name)
                outputs, meta = self._run_map(planned, map_args, prefix)
            else:
                outputs, meta = self._run_task(planned, tuple(key for key, _ in flat), args, prefix, lists)
            for port, value in outputs.items():
                values[(planned.id, port)] = value
            if meta is not None:
                self._locked(self.state.complete, meta, prefix)
            if (meta is None or meta.failed) and self.fail_fast:
                self._stop = True  # a timed-out task returns no meta: it failed
        return values

    def _run_task(
        self,
        planned: PlannedNode,
        keys: tuple[str, ...],
        args: list[Any],
        prefix: str,
        lists: Mapping[str, int] | None = None,
    ) -> tuple[dict[str, Any], TaskMeta | None]:
        spec = TaskSpec(
            run_id=self.run_id,
            workflow=self.plan.name,
            node=planned,
            arg_keys=keys,
            out_ports=_all_ports(planned),
            check_types=self.check_types,
            cache_dir=self.cache_dir,
            persist=not prefix and planned.id in self.persist_nodes,
            dynamic_cache=self.cache_dir is not None and planned.cache and planned.deterministic,
            breakers=self.breakers,
            lists=dict(lists or {}),
            cache_scope=self.cache_scope,
            policy=self.policy,
            secrets=self.secrets,
        )

        def send(index: int, events: list[RawEvent]) -> None:
            del index  # in-process events arrive in order already
            self._locked(self.state.task_events, events, prefix)

        if planned.timeout_s is None:
            returned, meta = execute_task(spec, args, TaskEmitter(send), instances=self.instances)
            return dict(zip(spec.out_ports, returned, strict=True)), meta
        return self._run_timed(planned, spec, args, prefix, send)

    def _run_timed(
        self, planned: PlannedNode, spec: TaskSpec, args: list[Any], prefix: str, send: Any
    ) -> tuple[dict[str, Any], TaskMeta | None]:
        """Run a node with a `timeout_s` in a thread per try, each of its attempts limited to the timeout.

        An attempt that exceeds it is abandoned (a thread cannot be killed; its late events are dropped) and,
        while the node's retry policy allows, counts as a failed attempt: `node.retrying`, the backoff, and
        the next attempt in a new thread with the full timeout (the engine's own retries of exceptions inside
        one try are timed attempt by attempt too)."""
        assert planned.timeout_s is not None
        timeout_s = planned.timeout_s
        while True:
            clock = _AttemptClock(timeout_s, spec.first_attempt)

            def timed_send(index: int, events: list[RawEvent], clock: _AttemptClock = clock) -> None:
                clock.saw(events)
                send(index, events)

            emitter = TaskEmitter(timed_send)
            box: list[tuple[list[Any], TaskMeta]] = []
            worker = threading.Thread(target=self._try, args=(spec, args, emitter, box), daemon=True)
            worker.start()
            while worker.is_alive() and clock.remaining() > 0:
                worker.join(clock.remaining())
            if box:
                returned, meta = box[0]
                return dict(zip(spec.out_ports, returned, strict=True)), meta
            emitter.close()
            attempt = clock.attempt
            exc = NodeTimeoutError(self.plan.name, prefix + planned.id, timeout_s, attempt)
            if self._cancelled.is_set() or self._stop or not planned.retry.should_retry(exc, attempt):
                self._locked(self.state.fail, planned, NodeStatus.FAILED, exc, prefix)
                return dict.fromkeys(spec.out_ports, UpstreamFailure(planned.id)), None
            delay = planned.retry.delay(attempt)
            retrying: RawEvent = (
                EventType.NODE_RETRYING,
                planned.id,
                attempt + 1,
                time.time(),
                {
                    "error": type(exc).__name__,
                    "message": str(exc),
                    "delay_s": delay,
                    "failed_attempt": attempt,
                },
            )
            self._locked(self.state.task_events, [retrying], prefix)
            if self._cancelled.wait(delay):
                cancelled = RunCancelledError(self.run_id, prefix + planned.id)
                self._locked(self.state.fail, planned, NodeStatus.CANCELLED, cancelled, prefix)
                return dict.fromkeys(spec.out_ports, UpstreamFailure(planned.id)), None
            spec = replace(spec, first_attempt=attempt + 1)

    def _try(
        self, spec: TaskSpec, args: list[Any], emitter: TaskEmitter, box: list[tuple[list[Any], TaskMeta]]
    ) -> None:
        box.append(execute_task(spec, args, emitter, instances=self.instances))

    def _run_map(
        self, planned: PlannedNode, values: dict[str, Any], prefix: str
    ) -> tuple[dict[str, Any], TaskMeta]:
        layout = map_layout(planned)
        sub = planned.subplan
        assert sub is not None
        node_id = planned.id
        for value in values.values():
            if isinstance(value, InputFailure):  # an element of a list input could not be converted
                return _failed_map(planned, layout.out_port, value.error)
            if isinstance(value, UpstreamFailure):
                error = NodeError.from_exception(
                    prefix + node_id, 0, UpstreamFailedError(node_id, value.node)
                )
                outcome = NodeOutcome(node_id, planned.type_id, NodeStatus.FAILED, 0, error=error)
                return {layout.out_port: UpstreamFailure(node_id)}, TaskMeta(node_id, (outcome,))
        if any(v is SKIP for v in values.values()):
            outcome = NodeOutcome(node_id, planned.type_id, NodeStatus.SKIPPED)
            return {layout.out_port: SKIP}, TaskMeta(node_id, (outcome,))
        try:
            items = map_items(planned, layout, values[layout.list_port], self.plan.name, prefix + node_id)
        except PortTypeError as exc:
            return _failed_map(planned, layout.out_port, exc)
        started = time.time()
        self._locked(self.state.task_events, [(EventType.NODE_STARTED, node_id, 1, started, {})], prefix)
        results: list[Any] = []
        failure: str | None = None
        for index, item in enumerate(items):
            sub_prefix = element_prefix(node_id, index, prefix)
            self._locked(self.state.add_nodes, sub.nodes, sub_prefix)
            sub_inputs = element_inputs(layout, sub, index, item, values)
            sub_values = self._run_plan(sub, sub_inputs, sub_prefix)
            value = _binding_value(sub.outputs[layout.sub_output], sub_values, sub_inputs)
            if isinstance(value, UpstreamFailure):
                failure = failure or sub_prefix + value.node
            results.append(value)
        if failure is None and (self._cancelled.is_set() or self._stop):
            error = NodeError.from_exception(node_id, 1, RunCancelledError(self.run_id, prefix + node_id))
            outcome = NodeOutcome(
                node_id, planned.type_id, NodeStatus.CANCELLED, 1, started, time.time(), error
            )
            return {layout.out_port: UpstreamFailure(node_id)}, TaskMeta(node_id, (outcome,))
        if failure is not None:
            error = NodeError.from_exception(
                prefix + node_id, 1, UpstreamFailedError(prefix + node_id, failure)
            )
            outcome = NodeOutcome(node_id, planned.type_id, NodeStatus.FAILED, 1, started, time.time(), error)
            return {layout.out_port: UpstreamFailure(node_id)}, TaskMeta(node_id, (outcome,))
        if self.map_results is not None and not prefix:
            # A durable run: the result is written before the success is recorded, as every node's is.
            try:
                self.map_results.put(self.run_id, node_id, {layout.out_port: results})
            except Exception as exc:  # it cannot be kept (unwritable store, a value beyond the JSON limits)
                error = NodeError.from_exception(node_id, 1, exc)
                outcome = NodeOutcome(
                    node_id, planned.type_id, NodeStatus.FAILED, 1, started, time.time(), error
                )
                return {layout.out_port: UpstreamFailure(node_id)}, TaskMeta(node_id, (outcome,))
        persist = map_persist_args(self.cache_dir, planned, not prefix, layout.out_port)
        if persist is not None:
            persist_map_result(*persist, results)
        outcome = NodeOutcome(node_id, planned.type_id, NodeStatus.SUCCEEDED, 1, started, time.time())
        return {layout.out_port: results}, TaskMeta(node_id, (outcome,))


class _AttemptClock:
    """The deadline of the running attempt of a timed node, moved by the events its task sends: each
    attempt (`node.started`, or `node.retrying` plus its backoff) gets the full timeout. Thread-safe."""

    def __init__(self, timeout_s: float, attempt: int) -> None:
        self.timeout_s = timeout_s
        self.attempt = attempt
        self._deadline = time.time() + timeout_s
        self._lock = threading.Lock()

    def saw(self, events: list[RawEvent]) -> None:
        """Note the attempts that `events` (sent by the task) start."""
        for type_, _node, attempt, at, payload in events:
            if type_ == EventType.NODE_STARTED:
                with self._lock:
                    self._deadline = at + self.timeout_s
            elif type_ == EventType.NODE_RETRYING and attempt is not None:
                with self._lock:
                    self.attempt = attempt
                    self._deadline = at + float(payload.get("delay_s", 0.0)) + self.timeout_s

    def remaining(self) -> float:
        """Seconds until the running attempt exceeds its timeout (0 once it has)."""
        with self._lock:
            return max(self._deadline - time.time(), 0.0)


def _failed_map(planned: PlannedNode, out_port: str, exc: BaseException) -> tuple[dict[str, Any], TaskMeta]:
    """A map node that failed before its elements ran (an element of its list could not be converted)."""
    now = time.time()
    error = NodeError.from_exception(planned.id, 1, exc)
    outcome = NodeOutcome(planned.id, planned.type_id, NodeStatus.FAILED, 1, now, now, error)
    return {out_port: UpstreamFailure(planned.id)}, TaskMeta(planned.id, (outcome,))


def _hit_values(hit: CacheHit) -> Mapping[str, Any]:
    if not hit.refs:
        return hit.values
    import ray

    return dict(zip(hit.refs, ray.get(list(hit.refs.values())), strict=True))


def _all_ports(planned: PlannedNode) -> tuple[str, ...]:
    # In-process every output is kept (values cost nothing to hold), so any binding can read it.
    if planned.is_fused or planned.spec is None:
        return tuple(planned.outputs)
    names = tuple(p.name for p in planned.spec.outputs)
    return names + tuple(p for p in planned.outputs if p not in names)


def _map_args(
    planned: PlannedNode,
    flat: list[tuple[str, Any]],
    lists: Mapping[str, int],
    args: list[Any],
    workflow: str,
) -> dict[str, Any]:
    """A map node's argument per port, its list bindings assembled (a map's inputs are control values)."""
    by_key = assemble_lists(planned, dict(zip((key for key, _ in flat), args, strict=True)), lists, workflow)
    return {port: by_key[port] for port in planned.inputs}


def _binding_value(binding: Any, values: Values, inputs: Mapping[str, Any]) -> Any:
    if isinstance(binding, NodeRef):
        return values.get((binding.node, binding.port), UpstreamFailure(binding.node))
    if isinstance(binding, InputRef):
        return inputs[binding.name]
    if isinstance(binding, Const):
        return binding.value
    raise TypeError(f"unknown binding {binding!r}")


class InProcessExecutor:
    """Runs plans in this process (tests, debugging); same semantics and events as `RayExecutor`."""

    def __init__(self, *, breakers: CircuitBreakers | None = None, check_types: bool = True) -> None:
        self.breakers = breakers or CircuitBreakers()
        self.check_types = check_types

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
        cache_scope: str = "",
        policy: AccessPolicy | None = None,
        map_results: MapResultRecorder | None = None,
        detached: bool = False,
        secrets: RunSecrets | None = None,
    ) -> LocalRun:
        """Start running `plan` with resolved workflow `inputs`; returns the run (a `RunSource`).

        `persist_nodes` are always written to the durable cache (the nodes the workflow outputs read).
        `cache_scope`: the scope the plan's cache keys were made in (`compute_cache_keys`), for dynamic keys.
        `policy`: what the run's file and network nodes may reach (`engine.execution.access.policy_for`);
        without one, no file and no internal address. `map_results`: where a durable run keeps the results of
        its top-level map nodes, each written before the node's success is recorded. `detached` changes
        nothing here: an in-process run lives and dies with this process whatever the caller asks.
        """
        del detached
        run = LocalRun(
            plan,
            inputs,
            run_id=run_id,
            fail_fast=fail_fast,
            cached=cached,
            cache_dir=cache_dir,
            breakers=self.breakers,
            check_types=self.check_types,
            sink=sink,
            persist_nodes=persist_nodes,
            cache_scope=cache_scope,
            policy=policy,
            map_results=map_results,
            secrets=secrets,
        )
        return run.start()
