"""Showing a run in the terminal: the live table of node states, following a run to its end, and its outputs.

Used by the local `rayweave run` and the `--server` one (the client reads API events as the same engine `Event`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from nodes.states import EventType, NodeStatus


def status_style(status: str) -> str:
    """The Rich style a run or node state is shown in."""
    styles: dict[str, str] = {
        NodeStatus.SUCCEEDED: "green",
        NodeStatus.CACHED: "cyan",
        NodeStatus.RUNNING: "yellow",
        NodeStatus.FAILED: "red",
        NodeStatus.CANCELLED: "magenta",
        NodeStatus.SKIPPED: "dim",
    }
    return styles.get(status, "white")


#: The events that end a node, and the state each one leaves it in.
_NODE_ENDS: Mapping[str, NodeStatus] = MappingProxyType(
    {
        EventType.NODE_SUCCEEDED: NodeStatus.SUCCEEDED,
        EventType.NODE_FAILED: NodeStatus.FAILED,
        EventType.NODE_SKIPPED: NodeStatus.SKIPPED,
        EventType.NODE_CACHED: NodeStatus.CACHED,
        EventType.NODE_CANCELLED: NodeStatus.CANCELLED,
    }
)


class LiveView:
    """Node states kept up to date from run events, rendered as a Rich table."""

    def __init__(self, workflow: str, nodes: list[str] | None = None) -> None:
        self.workflow = workflow
        self.rows: dict[str, dict[str, Any]] = {}
        for node in nodes or ():  # listed up front, in plan order, so the table does not jump around
            self.rows[node] = {"status": NodeStatus.PENDING, "attempt": 1, "progress": "", "detail": ""}

    def apply(self, event: Any) -> None:
        """Fold one event into the table."""
        if event.node is None:
            return
        row = self.rows.setdefault(
            event.node, {"status": NodeStatus.PENDING, "attempt": 1, "progress": "", "detail": ""}
        )
        kind = str(event.type)
        if kind == EventType.NODE_STARTED:
            row["status"] = NodeStatus.RUNNING
        elif kind == EventType.NODE_PROGRESS:
            row["progress"] = f"{event.payload.get('fraction', 0.0):.0%}"
            row["detail"] = str(event.payload.get("message", ""))
        elif kind == EventType.NODE_RETRYING:
            row["attempt"] = event.attempt or row["attempt"]
            row["detail"] = f"retrying after {event.payload.get('error', 'error')}"
        elif kind in _NODE_ENDS:
            row["status"] = _NODE_ENDS[kind]
            if event.attempt:
                row["attempt"] = event.attempt
            if "duration_s" in event.payload:
                row["detail"] = f"{event.payload['duration_s']:.2f} s"
            error = event.payload.get("error")
            if isinstance(error, dict):
                row["detail"] = f"{error.get('type')}: {error.get('message')}"[:80]
            if row["status"] == NodeStatus.SUCCEEDED:
                row["progress"] = "100%"

    def render(self) -> Any:
        """The Rich table of node states."""
        from rich.table import Table

        table = Table(title=f"workflow {self.workflow}", expand=False)
        for column in ("node", "status", "attempt", "progress", "detail"):
            table.add_column(column)
        for node, row in self.rows.items():
            style = status_style(row["status"])
            table.add_row(
                node,
                f"[{style}]{row['status']}[/{style}]",
                str(row["attempt"]),
                row["progress"],
                row["detail"],
            )
        return table


def node_ids(plan: Any) -> list[str]:
    """The ids of the workflow's nodes in `plan`, members of fused groups included (rows of the live view)."""
    return [m.id for p in plan.nodes for m in (p.members or (p,))]


def follow(handle: Any, workflow: str, console: Any, *, live: bool, nodes: list[str] | None = None) -> Any:
    """Wait for the run, showing node states live when `live`; Ctrl-C cancels the run."""
    try:
        if not live:
            return handle.result()
        from rich.live import Live

        view = LiveView(workflow, nodes)
        with Live(view.render(), console=console, refresh_per_second=8, transient=False) as display:
            for event in handle.events(poll_s=0.25):
                view.apply(event)
                display.update(view.render())
        return handle.result()
    except KeyboardInterrupt:
        handle.cancel()
        return handle.result()


def print_outputs(console: Any, result: Any) -> None:
    """Print a finished run's status, its errors (not the upstream-failed ones) and its outputs."""
    style = status_style(str(result.status))
    console.print()
    console.print(f"run [bold]{result.run_id}[/bold]: [{style}]{result.status}[/{style}]")
    for error in result.errors:
        if error.type != "UpstreamFailedError":
            console.print(f"[red]{error}[/red]", highlight=False, soft_wrap=True)
    for name, value in result.outputs.items():
        console.print(f"[bold]{name}[/bold] =", value)
    for name in result.skipped_outputs:
        console.print(f"[bold]{name}[/bold] [dim]skipped (its node's branch was not taken)[/dim]")
