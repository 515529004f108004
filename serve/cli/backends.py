"""The backend interfaces of the command groups: each command works against one backend, chosen once per
invocation, either local (this installation's store, engine and catalog) or remote (a rayweave server through
`serve.client.Client`, with `--server URL`).

The local backends live with their commands (`run_cmd.LocalRunner`, `runs_cmd.LocalRuns`,
`catalogs.LocalCatalog`), the remote ones in `remote_cmds`; a command module imports its own local backend and,
only when `--server` is given, `remote_cmds`, so no command module imports another. Both sides of a backend print
the same output and return (or exit with) the same status for the same outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from nodes.ids import RunId


class RunBackend(Protocol):
    """`rayweave run FILE`: runs the workflow in a file, shows it (live, or as one JSON document), returns the
    exit status."""

    def run(self, file: Path, inputs: list[str], *, as_json: bool, cache: bool) -> int:
        """Run the workflow in `file` with the `name=value` `inputs`; `cache=False` runs every node."""
        ...


class RunsBackend(Protocol):
    """`rayweave runs list|show|events|cancel`: each prints its answer (text, or JSON with `as_json`) and exits
    with status 1 (`typer.Exit`) when the run is unknown or the operation failed."""

    def list(self, status: list[str] | None, workflow: str | None, limit: int, as_json: bool) -> None:
        """Runs, newest first (of the given states and stored workflow, when given)."""
        ...

    def show(self, run_id: RunId, as_json: bool) -> None:
        """A run, its nodes and its outputs."""
        ...

    def events(self, run_id: RunId, after: int, follow: bool, as_json: bool) -> None:
        """A run's events after `after`, in order; with `follow` until the run ends."""
        ...

    def cancel(self, run_id: RunId, as_json: bool) -> None:
        """Cancel a queued or running run."""
        ...


class CatalogBackend(Protocol):
    """`rayweave nodes`, `rayweave types` and `rayweave validate`: the node and type catalog a workflow is
    checked against."""

    def nodes(self, category: str | None, accepts: str | None, produces: str | None) -> list[dict[str, Any]]:
        """The node types (their JSON form), of one category and port types when given."""
        ...

    def types(self) -> dict[str, Any]:
        """The type catalog (types, parents, coercion rules)."""
        ...

    def validate(self, file: Path, insert_conversions: bool) -> list[Any]:
        """The diagnostics of the workflow in `file` (`Diagnostic`s, located in the file's text when it has
        one); a file that cannot be read raises `workflow_files.Unreadable`."""
        ...
