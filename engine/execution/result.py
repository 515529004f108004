"""What a run returns: its status, outputs, and per-node status, timings, attempts and errors.

A workflow output whose node was skipped (its branch was not taken) has no value: it is left out of `outputs`
and its name is listed in `skipped_outputs` instead. The internal `SKIP` sentinel never reaches a caller.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.execution.events import _jsonable as _events_jsonable
from nodes.ids import NodeId, NodeTypeId, RunId
from nodes.skip import is_skip
from nodes.states import NodeStatus, RunStatus


@dataclass(frozen=True)
class NodeError:
    """Why a node failed: the node, the attempt, the exception type, its message and the traceback text."""

    node: str
    attempt: int
    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, node: str, attempt: int, exc: BaseException) -> NodeError:
        """Capture `exc` (raised by attempt `attempt` of `node`) as plain, picklable data."""
        text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        return cls(node=node, attempt=attempt, type=type(exc).__name__, message=str(exc), traceback=text)

    def __str__(self) -> str:
        return f"node {self.node!r} attempt {self.attempt}: {self.type}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict."""
        return {
            "node": self.node,
            "attempt": self.attempt,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }


@dataclass(frozen=True)
class NodeResult:
    """The outcome of one node (document node id; members of a fused group are reported one by one)."""

    node: NodeId
    type_id: NodeTypeId
    status: NodeStatus
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: NodeError | None = None

    @property
    def duration_s(self) -> float | None:
        """Wall time from the start of the first attempt to the end, or None if it never ran."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict."""
        return {
            "node": self.node,
            "type": self.type_id,
            "status": str(self.status),
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "error": self.error.to_json() if self.error else None,
        }


def split_skipped(outputs: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`outputs` without the skipped ones (whose value is `SKIP`), and the names of those, sorted."""
    kept = {name: value for name, value in outputs.items() if not is_skip(value)}
    return kept, tuple(sorted(name for name in outputs if name not in kept))


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run: `outputs` holds the requested workflow outputs of a succeeded run.

    An output whose node was skipped is not in `outputs`; its name is in `skipped_outputs` (sorted by name).
    Values given as `SKIP` are moved there when the result is built, so every executor and the durable path
    report skipped outputs the same way.
    """

    run_id: RunId
    workflow: str
    status: RunStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    nodes: Mapping[str, NodeResult] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    skipped_outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        kept, skipped = split_skipped(self.outputs)
        if skipped:
            # Frozen dataclass: set once here, while the object is being built, never afterwards.
            object.__setattr__(self, "outputs", kept)
            object.__setattr__(self, "skipped_outputs", tuple(sorted({*self.skipped_outputs, *skipped})))

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status is RunStatus.SUCCEEDED

    @property
    def errors(self) -> list[NodeError]:
        """The errors of the failed nodes, in plan order."""
        return [n.error for n in self.nodes.values() if n.error is not None]

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (outputs that are not JSON are shown with `repr`)."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": str(self.status),
            "outputs": {k: jsonable(v) for k, v in self.outputs.items()},
            "skipped_outputs": list(self.skipped_outputs),
            "nodes": {k: v.to_json() for k, v in self.nodes.items()},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


#: Kept under this name for `serve.runs`, which imports it from here; prefer `jsonable`.
_jsonable = _events_jsonable


def jsonable(value: Any) -> Any:
    """`value` as JSON-compatible data: tables and arrays as lists, other non-JSON values as `repr`."""
    return _jsonable(_plain(value))


def _plain(value: Any) -> Any:
    # Tables and arrays print as their Python form so `--json` output stays readable and parseable.
    to_pylist = getattr(value, "to_pylist", None)
    if callable(to_pylist):
        return to_pylist()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return value
