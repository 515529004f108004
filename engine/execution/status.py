"""The closed sets of states a run and a node of a run can be in."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """State of a whole run. `QUEUED` and `RUNNING` are live; the others are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once the run can no longer change state."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


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

    @property
    def is_final(self) -> bool:
        """True once the node can no longer change state."""
        return self not in (NodeStatus.PENDING, NodeStatus.RUNNING)

    @property
    def is_success(self) -> bool:
        """True for the states whose outputs downstream nodes may read."""
        return self in (NodeStatus.SUCCEEDED, NodeStatus.CACHED, NodeStatus.SKIPPED)
