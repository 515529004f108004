"""The closed sets of states a run and a node of a run can be in, and of the types of run events.

This is the one module that spells them: the engine, the store (and its CHECK constraints), the HTTP API
(OpenAPI `enum`s), the client and the command line all use these enums (`tests/test_states.py` fails on a
state or event type written as a string literal anywhere else in the packages). They live in `nodes`, the
lowest layer that knows what a node is, because node code reports `node.log`, `node.progress` and
`node.output` events through its context (`nodes.context`) and `nodes` may not import the engine.

They are `StrEnum`s: a member equals its string value, hashes like it and is written as it in JSON, so the
database, the API and the events keep the plain strings they always had.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

__all__ = ["EventType", "NodeStatus", "RunStatus"]


class RunStatus(StrEnum):
    """State of a whole run. `QUEUED` and `RUNNING` are live (`active()`); the others are final (`terminal()`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def terminal(cls) -> frozenset[RunStatus]:
        """The states a run ends in and never leaves."""
        return _RUN_TERMINAL

    @classmethod
    def active(cls) -> frozenset[RunStatus]:
        """The states of a run that has not ended yet."""
        return _RUN_ACTIVE

    @property
    def is_final(self) -> bool:
        """True once the run can no longer change state."""
        return self in _RUN_TERMINAL


class NodeStatus(StrEnum):
    """State of one node of a run.

    `SKIPPED` nodes were on an untaken branch; `CACHED` ones were answered from the cache without running;
    `FAILED` covers both a node that raised and a node whose upstream failed (its error says which).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    CANCELLED = "cancelled"

    @classmethod
    def successes(cls) -> frozenset[NodeStatus]:
        """The states whose outputs downstream nodes may read."""
        return _NODE_SUCCESS

    @property
    def is_final(self) -> bool:
        """True once the node can no longer change state."""
        return self not in _NODE_LIVE

    @property
    def is_success(self) -> bool:
        """True for the states whose outputs downstream nodes may read."""
        return self in _NODE_SUCCESS


class EventType(StrEnum):
    """The closed set of run event types (DESIGN.md, "Execution")."""

    RUN_QUEUED = "run.queued"
    RUN_STARTED = "run.started"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    NODE_STARTED = "node.started"
    NODE_SUCCEEDED = "node.succeeded"
    NODE_FAILED = "node.failed"
    NODE_RETRYING = "node.retrying"
    NODE_SKIPPED = "node.skipped"
    NODE_CACHED = "node.cached"
    NODE_CANCELLED = "node.cancelled"
    NODE_LOG = "node.log"
    NODE_PROGRESS = "node.progress"
    NODE_OUTPUT = "node.output"
    #: Recorded after a run's final event: one of its executions stood out (`engine.analytics.live`).
    ANOMALY_DETECTED = "anomaly.detected"

    @classmethod
    def run_final(cls) -> frozenset[EventType]:
        """The events that end a run."""
        return _RUN_FINAL_EVENTS

    @property
    def is_run_final(self) -> bool:
        """True for the event that ends a run."""
        return self in _RUN_FINAL_EVENTS

    @property
    def run_status(self) -> RunStatus | None:
        """The state a run ends in with this event (None for events that do not end a run)."""
        return _RUN_STATUS_OF.get(self)


# Built once, after the classes exist: an Enum cannot hold sets of its own members as attributes.
_RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
_RUN_ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
_NODE_LIVE = frozenset({NodeStatus.PENDING, NodeStatus.RUNNING})
_NODE_SUCCESS = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CACHED, NodeStatus.SKIPPED})
_RUN_STATUS_OF = MappingProxyType(
    {
        EventType.RUN_SUCCEEDED: RunStatus.SUCCEEDED,
        EventType.RUN_FAILED: RunStatus.FAILED,
        EventType.RUN_CANCELLED: RunStatus.CANCELLED,
    }
)
_RUN_FINAL_EVENTS = frozenset(_RUN_STATUS_OF)
