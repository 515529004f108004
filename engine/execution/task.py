"""The task wrapper: what runs inside a Ray task (or inline, in-process) for one planned node.

`execute_task(spec, args, emitter, ...)` receives the node's resolved input values and returns one value per
output port the plan keeps plus a small `TaskMeta` (statuses, attempts, timings, errors). It never raises for a
node failure: a failed node returns `UpstreamFailure` markers on its outputs, so the whole graph can be
submitted at once and every dependent learns of the failure from its inputs without asking the coordinator.
Skips propagate the same way (nodes that receive `SKIP` are skipped unless they accept skipped inputs).

Within the wrapper: the node context is installed (its events go to `emitter`), implicit coercions recorded
on edges are applied, inputs and outputs are type-checked with `typesys.check`, the engine's retries run
(backoff with jitter, `retry_on`, a `node.retrying` event per retry), circuit breakers are consulted, fused
groups run member by member, and results are written to the durable cache.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from engine.compile.plan import ListBinding, NodeRef, PlannedNode, element_key
from engine.errors import CircuitOpenError, PortTypeError, UpstreamFailedError
from engine.execution import usage
from engine.execution.breaker import BreakerClient, breaker_key, counts_against_breaker
from engine.execution.result import NodeError
from engine.secrets.refs import (
    RunSecrets,
    SecretLeakError,
    SecretUnavailableError,
    find_leak,
    guarding,
    is_secret_ref,
    leak_message,
    redact,
    redact_any,
    refuse_leaks,
)
from nodes import SKIP, context
from nodes.access import AccessPolicy
from nodes.ids import RunId
from nodes.objectstore import Location
from nodes.states import EventType, NodeStatus
from typesys import check
from typesys.check import describe_value
from typesys.errors import TypeCheckError

_log = logging.getLogger("rayweave.engine")

#: One event as a task reports it: (type, node id, attempt, unix time, payload).
RawEvent = tuple[str, str, int | None, float, Mapping[str, Any]]
# The types of the events a task reports itself, as the plain strings they travel as (an enum member
# pickles several times slower, and these cross to the coordinator for every task).
_STARTED: str = EventType.NODE_STARTED.value
_RETRYING: str = EventType.NODE_RETRYING.value


@dataclass(frozen=True)
class UpstreamFailure:
    """Passed downstream in place of each output of a node that failed, so dependents fail without running."""

    node: str

    def __repr__(self) -> str:
        return f"UpstreamFailure({self.node!r})"


class NodeOutcome(NamedTuple):
    """How one (document) node ended inside a task.

    A named tuple rather than a dataclass: every task builds one and the coordinator one per node, and a
    tuple is several times cheaper to make (issue 4, W1)."""

    node: str
    type_id: str
    status: NodeStatus
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: NodeError | None = None
    #: What the last attempt used (`engine.execution.usage`): CPU-seconds of the thread that ran the node body
    #: and the rise of the process's peak resident memory, in bytes (None: not measured, e.g. not run).
    cpu_s: float | None = None
    memory_bytes: int | None = None
    #: The in-memory size of the outputs where cheap to know (`engine.execution.usage.outputs_bytes`).
    output_bytes: int | None = None


class TaskMeta(NamedTuple):
    """The small result the coordinator waits for: one outcome per document node the task ran."""

    node: str
    outcomes: tuple[NodeOutcome, ...]
    events_sent: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    #: Where the task ran on Ray: (Ray node id, node IP address); None elsewhere (the in-process executor).
    placement: tuple[str, str] | None = None

    @property
    def failed(self) -> bool:
        """True when any node of the task failed."""
        return any(o.status is NodeStatus.FAILED for o in self.outcomes)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs besides its input values (picklable; shipped with every task).

    `arg_keys` names the positional input values (keys of `node.inputs`); `out_ports` the outputs returned,
    in order. `started_delay_s`: report `node.started` after this many seconds of running (tiny nodes finish
    first and never send it; the coordinator then derives it from the meta), 0 reports at once.
    `persist_min_s`: write results to the durable cache only for nodes that ran at least this long (or when
    `persist` is set, for nodes whose outputs the workflow returns), because recomputing a tiny node is
    cheaper than a file write. `dynamic_cache`: key the node by the content of its inputs (nodes downstream
    of non-deterministic ones, which have no plan-time key).
    """

    run_id: RunId
    workflow: str
    node: PlannedNode
    arg_keys: tuple[str, ...]
    out_ports: tuple[str, ...]
    check_types: bool = True
    cache_dir: str | Location | None = None
    persist: bool = False
    persist_min_s: float = 0.005
    dynamic_cache: bool = False
    started_delay_s: float = 0.0
    breakers: BreakerClient | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Input values that travel inside the spec rather than as task arguments (everything but ObjectRefs).
    consts: Mapping[str, Any] = field(default_factory=dict)
    #: List ports bound element by element: port -> length; the elements arrive under `element_key(port, i)`.
    lists: Mapping[str, int] = field(default_factory=dict)
    #: The scope of the run's cache keys (see `compute_cache_keys`); dynamic keys are made in it too.
    cache_scope: str = ""
    #: The number of the task's first attempt: above 1 when the executor runs the node again because an
    #: attempt exceeded its `timeout_s` (the engine's retries then go on counting from there).
    first_attempt: int = 1
    #: What the run's built-in file and network nodes may reach (`nodes.access`), installed in each node's
    #: context. The default allows no file and no internal address: a spec made without the run's policy
    #: fails closed.
    policy: AccessPolicy = AccessPolicy()  # noqa: RUF009 (a frozen value, shared safely)
    #: The stored workflow's version ("" for a document run), for the node's context.
    workflow_version: str = ""
    #: Installation settings nodes may read from their context (`engine.execution.nodeconfig`).
    config: Mapping[str, str] = field(default_factory=dict)
    #: The sealed secrets the run's nodes refer to (`{"secret": "name"}` params), opened by the task that
    #: runs a node just before calling it (`engine.secrets.refs`); None when the run refers to none.
    secrets: RunSecrets | None = None


class TaskEmitter:
    """Numbers and forwards a task's events; after `close()` nothing more is sent (late timers are dropped).

    `send(index, events)` gets the task-local index of the first event: a concurrent receiver (the
    coordinator actor) may see calls out of order and uses the index to restore it.
    """

    def __init__(self, send: Callable[[int, list[RawEvent]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._closed = False
        self.sent = 0

    def emit(self, type: str, node: str, attempt: int | None, payload: Mapping[str, Any]) -> None:
        """Send one event now (fire-and-forget)."""
        with self._lock:
            if self._closed:
                return
            index = self.sent
            self.sent += 1
            self._send(index, [(type, node, attempt, time.time(), payload)])

    def close(self) -> int:
        """Stop sending; returns how many events were sent."""
        with self._lock:
            self._closed = True
            return self.sent


def event_base(first_attempt: int) -> int:
    """The index of the first event of a task whose first attempt is `first_attempt`.

    A node run again after a timed-out attempt reports under the same key as the task it replaces, whose
    late events may still be on their way: the new task numbers its events from here, above any index the
    earlier one can have used, so the coordinator can tell the two apart."""
    return (first_attempt - 1) << 32


def execute_task(
    spec: TaskSpec,
    args: Sequence[Any],
    emitter: TaskEmitter,
    *,
    instances: dict[str, Any] | None = None,
) -> tuple[list[Any], TaskMeta]:
    """Run one planned node (or fused group) on its input values; see the module docstring.

    `instances` holds class-node instances across calls (a node actor passes its own dict).
    """
    planned = spec.node
    values = dict(spec.consts)
    values.update(zip(spec.arg_keys, args, strict=True))
    if spec.lists:
        values = assemble_lists(planned, values, spec.lists, spec.workflow)
    if spec.first_attempt != 1:
        emitter.sent = event_base(spec.first_attempt)
    started = time.time()
    token = _start_reporter(spec, emitter, started)
    try:
        if planned.is_fused:
            outputs, outcomes = _run_group(spec, values, emitter, instances)
        else:
            outputs, outcome = _run_cached(spec, planned, values, emitter, instances)
            outcomes = (outcome,)
    finally:
        sent = emitter.close()
        if token is not None:
            DelayedReporter.cancel_shared(token)
    returned = [outputs[port] if port in outputs else UpstreamFailure(planned.id) for port in spec.out_ports]
    meta = TaskMeta(planned.id, outcomes, sent, started, time.time())
    return returned, meta


@dataclass(frozen=True)
class InputFailure(UpstreamFailure):
    """Stands for an input value that could not be given to the node: an element of a list port whose
    implicit coercion failed. The node fails with `error` (a `PortTypeError`) without running."""

    error: BaseException

    def __repr__(self) -> str:
        return f"InputFailure({self.node!r}, {self.error!r})"


def assemble_lists(
    planned: PlannedNode, values: dict[str, Any], lists: Mapping[str, int], workflow: str = ""
) -> dict[str, Any]:
    """``values`` (keyed as `flatten` keys them) with the elements of each list port in ``lists`` (port ->
    length) replaced by the port's list (`assemble_list`)."""
    for port, length in lists.items():
        elements = [values.pop(element_key(port, index)) for index in range(length)]
        values[port] = assemble_list(planned, port, elements, workflow)
    return values


def assemble_list(planned: PlannedNode, port: str, elements: Sequence[Any], workflow: str = "") -> Any:
    """The value of list port ``port`` of ``planned`` from its elements' values (ADR 005).

    A failed element stands for the whole list (the node then fails as for any failed input); a skipped
    element skips the node, unless the node accepts skipped inputs, which then get the list without it.
    Implicit coercions recorded per element are applied here; one that fails gives an `InputFailure`
    whose `PortTypeError` names ``workflow``, the node, the port and the element.
    """
    for value in elements:
        if isinstance(value, UpstreamFailure):
            return value
    accepts_skipped = planned.definition is not None and planned.definition.spec.accepts_skipped
    values: list[Any] = []
    for index, value in enumerate(elements):
        if value is SKIP:
            if not accepts_skipped:
                return SKIP
            continue
        coercion = planned.coercions.get(element_key(port, index))
        if coercion is not None:
            try:
                value = coerce(workflow, planned, port, coercion, value, f"[{index}]")
            except PortTypeError as exc:
                return InputFailure(planned.id, exc)
        values.append(value)
    return values


def coerce(workflow: str, planned: PlannedNode, port: str, coercion: Any, value: Any, path: str = "") -> Any:
    """``coercion.apply(value)`` for the value at input ``port`` of ``planned`` (``path``: where the value
    sits inside the port's value, e.g. ``[2]``); raises `PortTypeError` naming the workflow, node, port,
    expected and actual type when the coercion fails."""
    try:
        return coercion.apply(value)
    except Exception as exc:  # any failure of an implicit coercion is a value of the wrong type at the port
        port_type = planned.input_types.get(port)
        raise coercion_error(
            workflow, planned.id, planned.type_id, port, coercion, value, exc, path, port_type
        ) from exc


def coercion_error(
    workflow: str,
    node: str,
    type_id: str,
    port: str,
    coercion: Any,
    value: Any,
    exc: BaseException,
    path: str = "",
    port_type: Any = None,
) -> PortTypeError:
    """The `PortTypeError` for `exc`, raised by the implicit coercion `coercion` of `value` at input `port`
    of node `node` (of type `type_id`); a failed runtime check inside the coercion gives the exact place."""
    conversion = f"its implicit coercion from {coercion.source} to {coercion.target} failed"
    cause = exc.__cause__ if isinstance(exc.__cause__, TypeCheckError) else exc
    if isinstance(cause, TypeCheckError):
        inner = _join_path(path, cause.path)
        expected, actual, where, detail = str(cause.expected), str(cause.actual), inner, conversion
    else:
        expected, actual, where = str(coercion.target), describe_value(value), path
        detail = f"{conversion}: {exc}"
    return PortTypeError(
        workflow,
        node,
        port,
        "input",
        expected,
        actual,
        where,
        node_type=type_id,
        port_type=str(port_type if port_type is not None else coercion.target),
        detail=detail,
    )


def _start_reporter(spec: TaskSpec, emitter: TaskEmitter, started: float) -> int | None:
    """Report `node.started` now, or schedule it for `started_delay_s` later; returns the schedule token."""
    node = spec.node
    first = node.members[0].id if node.is_fused else node.id
    if spec.started_delay_s <= 0:
        emitter.emit(_STARTED, first, spec.first_attempt, {"type": node.type_id, "started_at": started})
        return None
    return DelayedReporter.shared().schedule(
        started + spec.started_delay_s, emitter, first, node.type_id, started
    )


class DelayedReporter:
    """Sends `node.started` for tasks still running after their delay, from one thread per process.

    A timer per task would cost more than a tiny node itself, and so does waking a thread often: the thread
    needs the GIL that the running task holds, and on two cores shared by sixteen workers every such switch
    costs the task its caches. A task registers itself (`schedule`) and removes itself when it ends (`cancel`)
    with plain dictionary operations; it wakes the thread only when the thread sleeps because nothing has
    happened for a while. Otherwise the thread looks again every `POLL_S`: a stream of short tasks wakes it
    about once per `POLL_S` (not once per task), and a long task is reported at most `POLL_S` after its
    deadline (ADR 008). The registry holds only running tasks.
    """

    #: The longest time between two looks while tasks come and go; after a look that found nothing new
    #: since the one before, the thread sleeps until a task wakes it.
    POLL_S = 0.2
    # A class attribute rather than module state: created on first use inside a worker, never at import.
    _shared: DelayedReporter | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        self._pending: dict[int, tuple[float, TaskEmitter, str, str, float]] = {}
        self._tokens = itertools.count(1)
        self._wake = threading.Event()
        #: True while the thread sleeps until a task wakes it.
        self._sleeping = False
        self._last_token = 0
        #: How many times the thread has looked at the registry (for tests and diagnostics).
        self.looks = 0
        threading.Thread(target=self._loop, name="rayweave-started-reporter", daemon=True).start()

    @classmethod
    def shared(cls) -> DelayedReporter:
        """The reporter of this process."""
        if cls._shared is None:
            with cls._create_lock:
                if cls._shared is None:
                    cls._shared = cls()
        return cls._shared

    def schedule(self, deadline: float, emitter: TaskEmitter, node: str, type_id: str, started: float) -> int:
        """Report `node.started` for `node` (of type `type_id`, started at `started`) at `deadline` (unix
        times) unless cancelled first; returns a token."""
        token = next(self._tokens)
        self._pending[token] = (deadline, emitter, node, type_id, started)
        self._last_token = token
        if self._sleeping:
            self._wake.set()
        return token

    def cancel(self, token: int) -> None:
        """The task behind `token` has ended: nothing to report."""
        self._pending.pop(token, None)

    @classmethod
    def cancel_shared(cls, token: int) -> None:
        """`cancel` on the reporter of this process (which made `token`)."""
        if cls._shared is not None:
            cls._shared._pending.pop(token, None)

    def _due(self) -> list[tuple[float, TaskEmitter, str, str, float]]:
        """Wait until some report is due and take it (and any other due one) out of the registry."""
        seen = -1  # the last token the thread knew of at its previous look
        while True:
            self.looks += 1
            now = time.time()
            try:
                items = list(self._pending.items())  # a snapshot: tasks add and remove entries meanwhile
            except RuntimeError:  # changed size while being copied: look again
                continue
            due = [token for token, entry in items if entry[0] <= now]
            if due:
                taken = [self._pending.pop(token, None) for token in due]
                return [entry for entry in taken if entry is not None]  # unless its task ended just now
            # A task running now is most likely a short one, gone before its deadline: look again after a
            # poll, not at its deadline, which would wake the thread about once per task it sees.
            wait_s: float | None = self.POLL_S
            if not items and self._last_token == seen:
                # Nothing for a whole poll: sleep until a task wakes the thread. A task registering from
                # here on sees the flag; one that registered before it was set is seen by the check below.
                self._sleeping = True
                if self._pending or self._last_token != seen:
                    self._sleeping = False
                    continue
                wait_s = None
            seen = self._last_token
            self._wake.wait(wait_s)
            self._wake.clear()
            self._sleeping = False

    def _loop(self) -> None:
        while True:
            for _, emitter, node, type_id, started in self._due():
                try:
                    emitter.emit(_STARTED, node, 1, {"type": type_id, "started_at": started})
                except Exception as exc:  # e.g. the coordinator is gone: this thread serves the whole worker
                    _log.warning("could not report node %s as started: %s", node, exc)


def _join_path(outer: str, inner: str) -> str:
    """Paths into a value as typesys writes them: ``[2]`` then ``a`` is ``[2].a``; ``[2]`` then ``[0]`` is
    ``[2][0]``."""
    if not outer or not inner:
        return outer or inner
    return f"{outer}{inner}" if inner.startswith("[") else f"{outer}.{inner}"


def _run_group(
    spec: TaskSpec, values: Mapping[str, Any], emitter: TaskEmitter, instances: dict[str, Any] | None
) -> tuple[dict[str, Any], tuple[NodeOutcome, ...]]:
    """Run the members of a fused group in order; a member's failure fails the members that read from it."""
    member_ids = {m.id for m in spec.node.members}
    results: dict[str, dict[str, Any]] = {}
    outcomes: list[NodeOutcome] = []

    def inside(ref: NodeRef) -> Any:
        return results[ref.node].get(ref.port, UpstreamFailure(ref.node))

    for member in spec.node.members:
        member_values: dict[str, Any] = {}
        for port, binding in member.inputs.items():
            if isinstance(binding, NodeRef) and binding.node in member_ids:
                member_values[port] = inside(binding)
            elif isinstance(binding, ListBinding):
                elements = [
                    inside(item)
                    if isinstance(item, NodeRef) and item.node in member_ids
                    else values[f"{member.id}.{element_key(port, index)}"]
                    for index, item in enumerate(binding.items)
                ]
                member_values[port] = assemble_list(member, port, elements, spec.workflow)
            else:
                member_values[port] = values[f"{member.id}.{port}"]
        member_spec = TaskSpec(
            run_id=spec.run_id,
            workflow=spec.workflow,
            node=member,
            arg_keys=(),
            out_ports=(),
            check_types=spec.check_types,
            breakers=spec.breakers,
            policy=spec.policy,
            extra=spec.extra,
            workflow_version=spec.workflow_version,
            config=spec.config,
            secrets=spec.secrets,
        )
        outputs, outcome = run_node(member_spec, member, member_values, emitter, instances)
        results[member.id] = outputs
        outcomes.append(outcome)
    flat: dict[str, Any] = {}
    for member_id, outputs in results.items():
        for port, value in outputs.items():
            flat[f"{member_id}.{port}"] = value
    if spec.cache_dir and spec.node.cache_key and all(o.status is NodeStatus.SUCCEEDED for o in outcomes):
        _persist(spec, spec.node.cache_key, {p: flat[p] for p in spec.out_ports if p in flat}, outcomes)
    return flat, tuple(outcomes)


def _run_cached(
    spec: TaskSpec,
    planned: PlannedNode,
    values: dict[str, Any],
    emitter: TaskEmitter,
    instances: dict[str, Any] | None,
) -> tuple[dict[str, Any], NodeOutcome]:
    """`run_node` with the durable cache around it (a dynamic-key lookup first, a write after success)."""
    key = planned.cache_key
    node_spec = planned.definition.spec if planned.definition is not None else None
    if spec.cache_dir and spec.dynamic_cache and key is None and node_spec is not None:
        ready = not any(isinstance(v, UpstreamFailure) or v is SKIP for v in values.values())
        if ready and not _stored_by_earlier_attempt(planned, spec.run_id):
            from engine.cache.disk import DiskStore
            from engine.cache.keys import dynamic_cache_key

            try:
                key = dynamic_cache_key(
                    planned.type_id, node_spec.code_version, planned.params, values, spec.cache_scope
                )
                hit = DiskStore(spec.cache_dir).get(key, spec.out_ports)
            except Exception:  # an unhashable value only means no caching for this node
                key, hit = None, None
            if hit is not None and _kept(planned, spec.run_id, hit):
                return hit, NodeOutcome(planned.id, planned.type_id, NodeStatus.CACHED)
    outputs, outcome = run_node(spec, planned, values, emitter, instances)
    if spec.cache_dir and key and planned.cache and outcome.status is NodeStatus.SUCCEEDED:
        _persist(spec, key, {p: outputs[p] for p in spec.out_ports if p in outputs}, (outcome,))
    return outputs, outcome


def _stored_by_earlier_attempt(planned: PlannedNode, run_id: RunId) -> bool:
    """Whether `planned` is a durable run's node that Ray runs again after its earlier attempt had stored its
    outputs (`engine.durable.persist`): it succeeded then, and must not be reported as a cache hit now."""
    stored = getattr(planned.definition, "stored_by_earlier_attempt", None)
    return stored is not None and bool(stored(run_id, planned.id))


def _kept(planned: PlannedNode, run_id: RunId, outputs: Mapping[str, Any]) -> bool:
    """Whether a cache hit found in the task may answer for `planned`.

    A durable run's definitions keep every node's result (`keep_cached` of `engine.durable.persist`'s
    wrapper), a hit's too, or the run would end without it; when that fails the node runs instead (and its
    own write fails it, if it must). Other definitions have no `keep_cached`: any hit answers.
    """
    keep = getattr(planned.definition, "keep_cached", None)
    if keep is None:
        return True
    try:
        keep(run_id, planned.id, outputs)
    except Exception as exc:
        _log.warning("could not keep the cached result of node %s: %s; running it", planned.id, exc)
        return False
    return True


def _persist(spec: TaskSpec, key: str, outputs: dict[str, Any], outcomes: Sequence[NodeOutcome]) -> None:
    took = sum((o.finished_at or 0.0) - (o.started_at or 0.0) for o in outcomes)
    if not (spec.persist or took >= spec.persist_min_s):
        return
    from engine.cache.disk import DiskStore

    try:
        # A fused group's entry records its members' types: purging one of them must find it.
        members = tuple(m.type_id for m in spec.node.members)
        DiskStore(spec.cache_dir or "").put(key, spec.node.type_id, outputs, member_types=members)
    except Exception as exc:  # a cache write must never fail a run
        _log.warning("could not write node %s to the cache at %s: %s", spec.node.id, spec.cache_dir, exc)


def run_node(
    spec: TaskSpec,
    planned: PlannedNode,
    values: Mapping[str, Any],
    emitter: TaskEmitter,
    instances: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], NodeOutcome]:
    """Run one (non-fused) node: upstream-failure and skip rules, coercions, checks, retries, breaker."""
    node_id, type_id = planned.id, planned.type_id
    definition = planned.definition
    if definition is None:
        raise ValueError(
            f"node {node_id!r} ({type_id}) has no definition; fused groups go through _run_group"
        )
    # The definition's spec, not `planned.spec`: the coordinator strips that one to keep tasks small.
    node_spec = definition.spec
    not_run = _not_run(spec, planned, node_spec, values)
    if not_run is not None:
        return not_run

    started = time.time()
    attempt = spec.first_attempt
    try:
        inputs = _prepare_inputs(spec, planned, values)
        params, secret_values = _resolve_params(spec, planned)
    except Exception as exc:
        error = NodeError.from_exception(node_id, attempt, exc)
        return dict.fromkeys(_out_names(node_spec), UpstreamFailure(node_id)), NodeOutcome(
            node_id, type_id, NodeStatus.FAILED, attempt, started, time.time(), error
        )
    bkey = breaker_key(type_id, node_spec.tags) if spec.breakers is not None else None
    instance = None
    node_key = spec.extra.get("prefix", "") + node_id  # the node's key in the run's events
    while True:
        ctx = context.NodeContext(
            spec.run_id,
            node_key,
            attempt,
            _context_emit(emitter, node_id, attempt, secret_values),
            spec.policy,
            workflow=spec.workflow,
            workflow_version=spec.workflow_version,
            config=spec.config,
        )
        measured = usage.start()
        try:
            if bkey is not None and spec.breakers is not None:
                permit = spec.breakers.acquire(bkey)
                if not permit.allowed:
                    raise CircuitOpenError(bkey, node_id, permit.retry_after_s, permit.failures)
            with context.use(ctx):
                if node_spec.kind == "class":
                    instance = _instance(planned, instances)
                if secret_values:
                    with guarding(node_id, secret_values):  # a durable definition checks before writing
                        outputs = definition.invoke(inputs, params, instance=instance)
                    refuse_leaks(outputs, node_id, secret_values)
                else:
                    outputs = definition.invoke(inputs, params, instance=instance)
            used = usage.finish(measured)
            if bkey is not None and spec.breakers is not None:
                spec.breakers.record(bkey, True)
            if spec.check_types:
                _check_outputs(spec, planned, outputs)
            size = usage.outputs_bytes(outputs)
            return outputs, NodeOutcome(
                node_id, type_id, NodeStatus.SUCCEEDED, attempt, started, time.time(), None, *used, size
            )
        except Exception as exc:
            used = usage.finish(measured)
            circuit_open = isinstance(exc, CircuitOpenError)
            if (
                bkey is not None
                and spec.breakers is not None
                and not circuit_open
                and counts_against_breaker(exc)
            ):
                spec.breakers.record(bkey, False)
            if circuit_open or isinstance(exc, PortTypeError) or not planned.retry.should_retry(exc, attempt):
                error = _redacted(NodeError.from_exception(node_id, attempt, exc), secret_values)
                return dict.fromkeys(_out_names(node_spec), UpstreamFailure(node_id)), NodeOutcome(
                    node_id, type_id, NodeStatus.FAILED, attempt, started, time.time(), error, *used
                )
            delay = planned.retry.delay(attempt)
            emitter.emit(
                _RETRYING,
                node_id,
                attempt + 1,
                {
                    "error": type(exc).__name__,
                    "message": redact(str(exc), secret_values),
                    "delay_s": delay,
                    "failed_attempt": attempt,
                    **_usage_payload(used),
                },
            )
            time.sleep(delay)
            attempt += 1


def _usage_payload(used: usage.Usage) -> dict[str, Any]:
    """The measured figures of an attempt as event payload fields (`cpu_s`, `memory_bytes` when known)."""
    payload: dict[str, Any] = {"cpu_s": round(used.cpu_s, 6)}
    if used.memory_bytes is not None:
        payload["memory_bytes"] = used.memory_bytes
    return payload


def _not_run(
    spec: TaskSpec, planned: PlannedNode, node_spec: Any, values: Mapping[str, Any]
) -> tuple[dict[str, Any], NodeOutcome] | None:
    """What a node ends with without running (`run_node`): failed when an input is an upstream failure (or
    an input it could not be given), skipped when an input is `SKIP` and it does not accept skipped inputs;
    None when it runs."""
    node_id, type_id = planned.id, planned.type_id
    for value in values.values():
        if isinstance(value, UpstreamFailure):
            failure = UpstreamFailure(node_id)
            if isinstance(value, InputFailure):  # an input this node could not be given: it fails itself
                now = time.time()
                error = NodeError.from_exception(node_id, spec.first_attempt, value.error)
                return dict.fromkeys(_out_names(node_spec), failure), NodeOutcome(
                    node_id, type_id, NodeStatus.FAILED, spec.first_attempt, now, now, error
                )
            error = NodeError.from_exception(node_id, 0, UpstreamFailedError(node_id, value.node))
            return dict.fromkeys(_out_names(node_spec), failure), NodeOutcome(
                node_id, type_id, NodeStatus.FAILED, 0, error=error
            )
    if not node_spec.accepts_skipped and any(v is SKIP for v in values.values()):
        return dict.fromkeys(_out_names(node_spec), SKIP), NodeOutcome(node_id, type_id, NodeStatus.SKIPPED)
    return None


def _out_names(node_spec: Any) -> tuple[str, ...]:
    """The output port names of a node (only needed when it does not return normally)."""
    return tuple(port.name for port in node_spec.outputs)


def _context_emit(
    emitter: TaskEmitter, node_id: str, attempt: int, secret_values: Sequence[str] = ()
) -> Callable[[str, Mapping[str, Any]], None]:
    if secret_values:

        def emit_redacted(event_type: str, payload: Mapping[str, Any]) -> None:
            if event_type == EventType.NODE_OUTPUT and find_leak(payload, secret_values):
                raise SecretLeakError(leak_message(node_id))
            emitter.emit(event_type, node_id, attempt, redact_any(payload, secret_values))

        return emit_redacted

    def emit(event_type: str, payload: Mapping[str, Any]) -> None:
        emitter.emit(event_type, node_id, attempt, payload)

    return emit


def _resolve_params(spec: TaskSpec, planned: PlannedNode) -> tuple[Mapping[str, Any], list[str]]:
    """The node's params with its secret references opened (in this worker), and the values opened."""
    if not any(is_secret_ref(value) for value in planned.params.values()):
        return planned.params, []
    if spec.secrets is None:
        raise SecretUnavailableError(
            f"node {planned.id!r} refers to secrets, and this run was started without access to the secrets "
            "store; run it durably (`rayweave run`, POST /v1/runs), where secrets are resolved for the run's owner"
        )
    return spec.secrets.resolve(planned.params)


def _redacted(error: NodeError, secret_values: Sequence[str]) -> NodeError:
    """`error` with the node's secret values taken out of its message and traceback."""
    if not secret_values:
        return error
    return replace(
        error, message=redact(error.message, secret_values), traceback=redact(error.traceback, secret_values)
    )


def _instance(planned: PlannedNode, instances: dict[str, Any] | None) -> Any:
    """The class-node instance for this node type (built once per holder: the node actor)."""
    assert planned.definition is not None
    if instances is None:
        return planned.definition.new_instance()
    key = f"{planned.type_id}#{planned.definition.spec.code_version}"
    if key not in instances:
        instances[key] = planned.definition.new_instance()
    return instances[key]


def _prepare_inputs(spec: TaskSpec, planned: PlannedNode, values: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the implicit coercions recorded on the edges, then type-check each input value."""
    inputs: dict[str, Any] = {}
    for port, value in values.items():
        coercion = planned.coercions.get(port)
        if coercion is not None and value is not SKIP:
            value = coerce(spec.workflow, planned, port, coercion, value)
        if spec.check_types and value is not SKIP:
            expected = planned.input_types.get(port)
            if expected is not None:
                _check(spec, planned, port, "input", value, expected)
        inputs[port] = value
    return inputs


def _check_outputs(spec: TaskSpec, planned: PlannedNode, outputs: Mapping[str, Any]) -> None:
    for port, value in outputs.items():
        expected = planned.output_types.get(port)
        if expected is not None and value is not SKIP:
            _check(spec, planned, port, "output", value, expected)


def _check(
    spec: TaskSpec, planned: PlannedNode, port: str, direction: str, value: Any, expected: Any
) -> None:
    try:
        # The validators of the custom types on this node's ports (None: only built-in types) run here.
        check(value, expected, registry=planned.validators)
    except TypeCheckError as exc:
        raise PortTypeError(
            spec.workflow,
            planned.id,
            port,
            "output" if direction == "output" else "input",
            str(exc.expected),
            str(exc.actual),
            exc.path,
            node_type=planned.type_id,
            port_type=str(expected),
            detail=exc.detail,
        ) from exc
