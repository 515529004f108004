"""The bookkeeping of one run, shared by the in-process executor and the Ray run coordinator.

`RunState` turns what happens to tasks (a node started, a task finished with its `TaskMeta`, a task was
cancelled or timed out, a node was answered from the cache) into node states and run events, in order. It is
the single place that decides statuses, so both executors report the same thing for the same run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.compile.plan import Plan, PlannedNode
from engine.execution.events import EventLog
from engine.execution.result import NodeError, NodeResult
from engine.execution.task import NodeOutcome, RawEvent, TaskMeta
from nodes.ids import NodeId, NodeTypeId, RunId
from nodes.states import EventType, NodeStatus, RunStatus

_FINAL_EVENT = {
    NodeStatus.SUCCEEDED: EventType.NODE_SUCCEEDED,
    NodeStatus.FAILED: EventType.NODE_FAILED,
    NodeStatus.SKIPPED: EventType.NODE_SKIPPED,
    NodeStatus.CACHED: EventType.NODE_CACHED,
    NodeStatus.CANCELLED: EventType.NODE_CANCELLED,
}


@dataclass
class NodeRecord:
    """Mutable state of one document node during a run."""

    node: NodeId
    type_id: NodeTypeId
    status: NodeStatus = NodeStatus.PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: NodeError | None = None

    def result(self) -> NodeResult:
        """A frozen snapshot."""
        return NodeResult(
            self.node, self.type_id, self.status, self.attempts, self.started_at, self.finished_at, self.error
        )


def members_of(planned: PlannedNode) -> tuple[PlannedNode, ...]:
    """The document nodes a planned node stands for (the members of a fused group, or itself)."""
    return planned.members if planned.is_fused else (planned,)


class RunState:
    """Node records and the event log of one run (see the module docstring). Single-threaded use."""

    def __init__(self, run_id: RunId, plan: Plan, log: EventLog, metrics: Any = None) -> None:
        self.run_id = run_id
        self.plan = plan
        self.log = log
        self.metrics = metrics
        self.records: dict[str, NodeRecord] = {}
        self.status = RunStatus.QUEUED
        self.started_at: float | None = None
        self.finished_at: float | None = None
        for planned in plan.nodes:
            self.add_nodes(members_of(planned))

    def add_nodes(self, nodes: Iterable[PlannedNode], prefix: str = "") -> None:
        """Track more document nodes (the per-element nodes of a map run under `prefix`)."""
        for node in nodes:
            for member in members_of(node):
                node_id = NodeId(prefix + member.id)
                self.records[node_id] = NodeRecord(node_id, NodeTypeId(member.type_id))

    # -- run level -----------------------------------------------------------------------------------

    def queued(self) -> None:
        """Record `run.queued`."""
        self.log.append(
            EventType.RUN_QUEUED, payload={"workflow": self.plan.name, "nodes": len(self.records)}
        )

    def started(self, *, coordinator: str = "") -> None:
        """Record `run.started`; `coordinator`: the actor name of the run coordinator that drives this execution
        (on Ray), recorded in the payload so a run shows where it was coordinated."""
        self.status = RunStatus.RUNNING
        self.started_at = time.time()
        payload: dict[str, Any] = {"workflow": self.plan.name}
        if coordinator:
            payload["coordinator"] = coordinator
        if self.plan.aliases:
            # Document nodes merged into an identical node: readers of the run's outputs find their values there.
            payload["merged"] = {str(k): str(v) for k, v in self.plan.aliases.items()}
        self.log.append(EventType.RUN_STARTED, payload=payload)

    def finish(self, cancelled: bool = False, reason: str = "") -> RunStatus:
        """Close every open node, decide the run status and record the final run event."""
        now = time.time()
        for record in self.records.values():
            if not record.status.is_final:
                record.status = NodeStatus.CANCELLED
                record.finished_at = now
                self.log.append(EventType.NODE_CANCELLED, record.node, record.attempts or None)
        failed = [r.node for r in self.records.values() if r.status is NodeStatus.FAILED]
        if cancelled:
            self.status = RunStatus.CANCELLED
            event = EventType.RUN_CANCELLED
        elif failed:
            self.status = RunStatus.FAILED
            event = EventType.RUN_FAILED
        else:
            self.status = RunStatus.SUCCEEDED
            event = EventType.RUN_SUCCEEDED
        self.finished_at = now
        payload: dict[str, Any] = {"workflow": self.plan.name, "failed_nodes": failed}
        if reason:
            payload["reason"] = reason
        self.log.append(event, payload=payload)
        if self.metrics is not None:
            self.metrics.run_finished(self.status)
        return self.status

    # -- node level ----------------------------------------------------------------------------------

    def task_events(self, events: Iterable[RawEvent], prefix: str = "") -> None:
        """Record events a task sent while running (started, retrying, log, progress, output)."""
        for type_, node, attempt, at, payload in events:
            record = self.records.get(prefix + node)
            if record is None or record.status.is_final:
                continue  # a late `node.started` after the task already finished
            if type_ == EventType.NODE_STARTED:
                if record.status is NodeStatus.PENDING:
                    self._running(record, attempt or 1, at)
                continue
            if record.status is NodeStatus.PENDING:
                self._running(record, 1, at)
            if type_ == EventType.NODE_RETRYING and attempt is not None:
                record.attempts = attempt
            self.log.append(EventType(type_), record.node, attempt, payload, at=at)

    def _running(self, record: NodeRecord, attempt: int, at: float) -> None:
        record.status = NodeStatus.RUNNING
        record.attempts = max(record.attempts, attempt)
        record.started_at = at
        self.log.append(EventType.NODE_STARTED, record.node, attempt, {"type": record.type_id}, at=at)

    def complete(self, meta: TaskMeta, prefix: str = "") -> None:
        """Record the outcome of every node a finished task ran."""
        for outcome in meta.outcomes:
            self.outcome(outcome, prefix, meta.placement)

    def outcome(
        self, outcome: NodeOutcome, prefix: str = "", placement: tuple[str, str] | None = None
    ) -> None:
        """Record how one node ended (started first if nobody reported it running); `placement`: the Ray node
        (id, IP address) its task ran on, carried by the final event as `ray_node` and `host`."""
        record = self.records.get(prefix + outcome.node)
        if record is None or record.status.is_final:
            return
        ran = outcome.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED) and outcome.attempts > 0
        if ran and record.status is NodeStatus.PENDING:
            self._running(record, 1, outcome.started_at or time.time())
        record.status = outcome.status
        record.attempts = max(record.attempts, outcome.attempts)
        if outcome.started_at is not None:
            record.started_at = record.started_at or outcome.started_at
        record.finished_at = outcome.finished_at or time.time()
        error = outcome.error
        if error is not None and prefix:
            error = NodeError(prefix + error.node, error.attempt, error.type, error.message, error.traceback)
        record.error = error
        payload: dict[str, Any] = {"type": record.type_id}
        if record.started_at is not None and outcome.finished_at is not None:
            payload["duration_s"] = outcome.finished_at - record.started_at
        if outcome.cpu_s is not None:  # measured figures of the last attempt (engine.execution.usage)
            payload["cpu_s"] = round(outcome.cpu_s, 6)
        if outcome.memory_bytes is not None:
            payload["memory_bytes"] = outcome.memory_bytes
        if outcome.output_bytes is not None:
            payload["output_bytes"] = outcome.output_bytes
        if placement is not None:
            payload["ray_node"], payload["host"] = placement
        if error is not None:
            payload["error"] = {"type": error.type, "message": error.message, "traceback": error.traceback}
        self.log.append(_FINAL_EVENT[outcome.status], record.node, record.attempts or None, payload)
        if self.metrics is not None:
            self.metrics.node_finished(record.type_id, outcome.status, payload.get("duration_s"))

    def fail(self, planned: PlannedNode, status: NodeStatus, exc: BaseException, prefix: str = "") -> None:
        """End every node of a task that did not return normally (timed out, cancelled, worker lost)."""
        for member in members_of(planned):
            record = self.records.get(prefix + member.id)
            if record is None or record.status.is_final:
                continue
            attempt = max(record.attempts, 1)
            error = NodeError.from_exception(prefix + member.id, attempt, exc)
            self.outcome(
                NodeOutcome(
                    member.id, member.type_id, status, attempt, record.started_at, time.time(), error
                ),
                prefix,
            )

    def cached(self, planned: PlannedNode, level: str, prefix: str = "") -> None:
        """Record that a node was answered from the cache (`level`) without running."""
        for member in members_of(planned):
            record = self.records.get(prefix + member.id)
            if record is None or record.status.is_final:
                continue
            record.status = NodeStatus.CACHED
            record.finished_at = time.time()
            self.log.append(
                EventType.NODE_CACHED, record.node, None, {"type": record.type_id, "level": level}
            )
            if self.metrics is not None:
                self.metrics.cache_hit(record.type_id, level)

    def is_running(self, planned: PlannedNode, prefix: str = "") -> bool:
        """True when a node of this task was reported running."""
        return any(
            self.records[prefix + m.id].status is NodeStatus.RUNNING
            for m in members_of(planned)
            if prefix + m.id in self.records
        )

    def results(self) -> dict[str, NodeResult]:
        """Snapshots of every node record, in plan order."""
        return {k: r.result() for k, r in self.records.items()}

    def summary(self) -> Mapping[str, Any]:
        """Counts of nodes per status (for progress displays)."""
        counts: dict[str, int] = {}
        for record in self.records.values():
            counts[str(record.status)] = counts.get(str(record.status), 0) + 1
        return counts
