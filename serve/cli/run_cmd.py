"""`rayweave run FILE` (run a workflow with live node states) and `rayweave cache stats|purge`.

`run` takes a .json/.yaml workflow document or a .py file with a module-level `workflow` (a builder).
Inputs are given as `--input name=value`, each value parsed by the input's declared type (`--input n=3` is
the integer 3 for an `Int` input; structured types take JSON). Without `--json` the node states are shown
live in the terminal and the outputs printed at the end; with `--json` one JSON document is printed
(run id, status, outputs, skipped outputs, per-node status); a run that cannot start prints one JSON document
too, with `status` `invalid` and the compiler's `diagnostics` (as `rayweave validate --json` gives them) or
`status` `error` and the message. Exit status: 0 succeeded, 1 the run failed, was cancelled or the workflow
has errors (a file that is not valid JSON/YAML or not a workflow document included), 2 bad usage (a missing
or unreadable file, an unknown or malformed input).

A run is durable, as one started through the API is: it is recorded in the store (`rayweave runs show ID`
finds it), and after a crash `rayweave runs resume` (or the recovery sweep of a running `rayweave serve`)
resumes it without running its finished nodes again. Not on a Ray cluster of several nodes with the default
SQLite store, which only this machine reaches: the run is then not recorded, and a note says why
(`unshared_store`). A run reads and fills the result cache, so a rerun with the same inputs takes the results
of cacheable nodes from there instead of running them (`--no-cache` runs every node, leaving the cache alone).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import typer

from nodes.states import EventType, NodeStatus
from serve.cli.remote import ApiKeyOption, ServerOption

_PRIMITIVE_PARSERS: dict[str, Any] = {
    "String": str,
    "Int": int,
    "Float": float,
    "Number": lambda text: int(text) if text.lstrip("+-").isdigit() else float(text),
}


class UsageError(Exception):
    """Bad usage of `rayweave run` (exit status 2); the message says what to fix."""

    exit_status = 2


class InvalidWorkflowError(UsageError):
    """The workflow file does not compile (not valid JSON/YAML, not a workflow document, type errors): a failed
    check, exit status 1. `diagnostics` are the compiler's, located in the file where it has a text."""

    exit_status = 1

    def __init__(self, message: str, diagnostics: list[Any], workflow: str | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics
        self.workflow = workflow


def report_failure(console: Any, as_json: bool, file: Path, exc: Exception) -> int:
    """Report why a run could not start and return the exit status: 1 for a workflow that does not compile (its
    diagnostics) or a cluster that cannot be reached, 2 for bad usage. With `as_json` the report is one JSON
    document on stdout (`status` is `invalid` or `error`), else a message on the console."""
    status = getattr(exc, "exit_status", 1)
    diagnostics = list(getattr(exc, "diagnostics", None) or ())
    if as_json:
        doc: dict[str, Any] = {"file": str(file), "status": "invalid" if diagnostics else "error"}
        if diagnostics:
            doc["workflow"] = getattr(exc, "workflow", None)
            doc["errors"] = sum(d.severity == "error" for d in diagnostics)
            doc["warnings"] = sum(d.severity == "warning" for d in diagnostics)
            doc["diagnostics"] = [d.to_json() for d in diagnostics]
        else:
            doc["error"] = str(exc)
        print(json.dumps(doc))
    elif getattr(exc, "workflow", None) is not None:  # the compiler's message lists the errors already
        console.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
    else:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return int(status)


def invalid_workflow(file: Path, exc: Any) -> InvalidWorkflowError:
    """The `InvalidWorkflowError` of a `WorkflowValidationError` raised compiling `file`, its diagnostics given
    the line and column of their field when the file is a JSON/YAML text."""
    diagnostics = list(exc.diagnostics)
    if file.suffix.lower() != ".py":
        from engine.compile.sarif import locate

        # The positions are a convenience: the diagnostics name node, port and field anyway.
        with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
            diagnostics = locate(diagnostics, file.read_text(encoding="utf-8"))
    return InvalidWorkflowError(str(exc), diagnostics, str(exc.workflow))


def load_python_workflow(path: Path) -> Any:
    """Import `path` and return its module-level `workflow`.

    The module is removed from `sys.modules` once it has run: Ray workers cannot import a file that is not
    on their path, and a module they could not import makes pickle ship its node functions by value.
    """
    name = f"_rayweave_run_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # while it runs: dataclasses and typing look their module up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it, never a traceback
        raise UsageError(f"{path}: importing the workflow file failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    workflow = getattr(module, "workflow", None)
    if workflow is None:
        raise UsageError(
            f"{path}: defines no module-level 'workflow'; assign your builder: workflow = Workflow(...)"
        )
    return workflow


def load_any(path: Path) -> Any:
    """The workflow in `path`: a builder for .py files, else the document. A file that cannot be read raises
    `UsageError`; one that is not a workflow document `InvalidWorkflowError` with its diagnostics."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.suffix.lower() == ".py":
        return load_python_workflow(path)
    from engine.compile.parse import load_diagnostics
    from engine.errors import WorkflowLoadError
    from engine.workflow.loader import guess_format, load_workflow_text

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read: {exc}") from None
    try:
        return load_workflow_text(text, guess_format(text, path.name), source=str(path))
    except WorkflowLoadError as exc:
        # Not valid JSON/YAML, or not a workflow document: a failed check, with located diagnostics.
        raise InvalidWorkflowError(str(exc), load_diagnostics(exc)) from None


def parse_inputs(pairs: list[str], declared: dict[str, Any]) -> dict[str, Any]:
    """Parse `name=value` pairs by the declared input types (`declared`: name -> typesys type)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--input {pair!r}: write it as name=value, e.g. --input n=3")
        if name not in declared:
            raise UsageError(
                f"--input {name}: the workflow has no input {name!r}; its inputs are {sorted(declared)}"
            )
        values[name] = parse_value(name, text, declared[name])
    return values


def parse_value(name: str, text: str, type_: Any) -> Any:
    """One input value from its command-line text, by its declared type."""
    type_text = str(type_)
    try:
        if type_text in _PRIMITIVE_PARSERS:
            return _PRIMITIVE_PARSERS[type_text](text)
        if type_text == "Bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        return json.loads(text)
    except ValueError:
        raise UsageError(
            f"--input {name}={text}: not a valid {type_text} (structured types take JSON, e.g. '[1, 2]')"
        ) from None


def _status_style(status: str) -> str:
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
            style = _status_style(row["status"])
            table.add_row(
                node,
                f"[{style}]{row['status']}[/{style}]",
                str(row["attempt"]),
                row["progress"],
                row["detail"],
            )
        return table


def run_command(
    file: Path,
    inputs: list[str],
    as_json: bool,
    address: str | None,
    optimize: bool,
    local: bool,
    cache: bool = True,
) -> int:
    """Run the workflow in `file`; returns the exit status (`cache=False`: run every node, leave the result
    cache alone)."""
    import ray
    from rich.console import Console

    from cluster.errors import ClusterConnectionError
    from cluster.settings import Settings
    from engine.durable.runner import DurableRunner
    from engine.errors import WorkflowInputError, WorkflowValidationError
    from engine.execution.api import compile_for_run
    from serve.cli.catalogs import catalog_for

    console = Console(stderr=as_json)
    settings = Settings(ray_address=address) if address else Settings()
    already_connected = ray.is_initialized()
    try:
        workflow = load_any(file)
        # Installed plugins are read inside their runtime environments, which may start Ray already.
        catalog = catalog_for(settings)
        plan = compile_for_run(workflow, catalog=catalog, optimize=optimize)
        values = parse_inputs(inputs, {name: spec.type for name, spec in plan.inputs.items()})
    except UsageError as exc:
        return report_failure(console, as_json, file, exc)
    except WorkflowValidationError as exc:
        return report_failure(console, as_json, file, invalid_workflow(file, exc))
    except ClusterConnectionError as exc:
        return report_failure(console, as_json, file, exc)
    if not local:
        from cluster.ray_runtime import ensure_ray

        try:
            ensure_ray(settings)
        except ClusterConnectionError as exc:
            return report_failure(console, as_json, file, exc)
    started_ray = ray.is_initialized() and not already_connected
    try:
        try:
            unshared = None if local else unshared_store(settings)
            if unshared is None:
                # Recorded in the store like a run started through the API (see the module docstring).
                runner = DurableRunner(
                    settings, executor="local" if local else "ray", catalog=catalog, cache=True
                )
                handle = runner.submit(workflow, values, optimize=optimize, cache=cache)
            else:
                from engine.execution.api import submit
                from engine.execution.executor import RayExecutor

                console.print(
                    f"[yellow]note:[/yellow] this run is not recorded in the store: {unshared}",
                    highlight=False,
                    soft_wrap=True,
                )
                executor = RayExecutor.for_settings(settings)
                handle = submit(plan, values, settings=settings, executor=executor, cache=cache)
        except WorkflowInputError as exc:
            return report_failure(console, as_json, file, UsageError(str(exc)))
        result = follow(handle, plan.name, console, live=not as_json, nodes=node_ids(plan))
        if as_json:
            print(json.dumps(result.to_json(), default=repr))
        else:
            _print_outputs(console, result)
        return 0 if result.ok else 1
    finally:
        if started_ray:
            from cluster.ray_runtime import shutdown_ray

            shutdown_ray()


def unshared_store(settings: Any) -> str | None:
    """Why the connected Ray cluster cannot record runs in the store of `settings`, or None when it can.

    A run's coordinator writes to the store from the node Ray placed it on. A SQLite file lives on this machine
    only, so it serves a one-node cluster (the embedded Ray, or one started here) but not a cluster of several
    nodes, which needs a database server they all reach.
    """
    if not settings.resolved_database_url.startswith("sqlite"):
        return None
    import ray

    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    alive = [node for node in nodes if node.get("Alive")]
    if len(alive) <= 1:
        return None
    return (
        f"the store is a SQLite file on this machine and the cluster has {len(alive)} nodes; set "
        "RAYWEAVE_DATABASE_URL to a PostgreSQL database every node can reach to record runs"
    )


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


def run_live(
    workflow: Any, inputs: dict[str, Any] | None = None, *, settings: Any = None, executor: Any = None
) -> Any:
    """Run `workflow` showing its node states live in the terminal, print its outputs, return the result.

    For scripts and demos (`examples/quickstart.py`); Ray is started (loopback only) when not connected.
    """
    from rich.console import Console

    from cluster.settings import Settings
    from engine.execution.api import compile_for_run, submit

    settings = settings or Settings()
    if executor is None:
        from cluster.ray_runtime import ensure_ray
        from engine.execution.executor import RayExecutor

        ensure_ray(settings)
        executor = RayExecutor.for_settings(settings)
    console = Console()
    plan = compile_for_run(workflow)
    handle = submit(plan, inputs, settings=settings, executor=executor)
    result = follow(handle, plan.name, console, live=True, nodes=node_ids(plan))
    _print_outputs(console, result)
    return result


def _print_outputs(console: Any, result: Any) -> None:
    style = _status_style(str(result.status))
    console.print()
    console.print(f"run [bold]{result.run_id}[/bold]: [{style}]{result.status}[/{style}]")
    for error in result.errors:
        if error.type != "UpstreamFailedError":
            console.print(f"[red]{error}[/red]", highlight=False, soft_wrap=True)
    for name, value in result.outputs.items():
        console.print(f"[bold]{name}[/bold] =", value)
    for name in result.skipped_outputs:
        console.print(f"[bold]{name}[/bold] [dim]skipped (its node's branch was not taken)[/dim]")


def cache_stats(as_json: bool) -> int:
    """Print the durable cache's entries and bytes per node type."""
    from rich.console import Console
    from rich.table import Table

    from cluster.settings import Settings
    from engine.cache.result_cache import ResultCache

    settings = Settings()
    stats = ResultCache.for_settings(settings).stats().get("disk")
    by_type = dict(stats.by_type) if stats is not None else {}
    if as_json:
        doc = {
            "cache_dir": str(settings.resolved_cache_dir),
            "entries": stats.entries if stats else 0,
            "bytes": stats.bytes if stats else 0,
            "by_node_type": {k: {"entries": n, "bytes": b} for k, (n, b) in sorted(by_type.items())},
        }
        print(json.dumps(doc))
        return 0
    table = Table(title=f"cache at {settings.resolved_cache_dir}")
    for column in ("node type", "entries", "bytes"):
        table.add_column(column)
    for node_type, (count, size) in sorted(by_type.items()):
        table.add_row(node_type, str(count), str(size))
    table.add_row("[bold]total[/bold]", str(stats.entries if stats else 0), str(stats.bytes if stats else 0))
    Console().print(table)
    return 0


def cache_purge(node_type: str | None, as_json: bool) -> int:
    """Delete cached results (of one node type when given)."""
    from cluster.settings import Settings
    from engine.cache.result_cache import ResultCache

    removed = ResultCache.for_settings(Settings()).purge(node_type)["disk"]
    if as_json:
        print(json.dumps({"removed": removed, "node_type": node_type}))
    else:
        what = f" of node type {node_type}" if node_type else ""
        print(f"removed {removed} cached result(s){what}")
    return 0


def register(app: typer.Typer) -> None:
    """Add `run` and the `cache` group to the `rayweave` app."""

    @app.command("run")
    def run(
        file: Path = typer.Argument(
            ..., help="Workflow file: .json, .yaml, or .py with a module-level `workflow`."
        ),
        input: list[str] = typer.Option(
            [], "--input", "-i", help="A workflow input as name=value (repeatable)."
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print one JSON document instead of the live view."
        ),
        address: str | None = typer.Option(None, "--address", help="Join the Ray cluster at this address."),
        no_optimize: bool = typer.Option(False, "--no-optimize", help="Turn off fusion and deduplication."),
        local: bool = typer.Option(
            False, "--local", help="Run in this process instead of on Ray (debugging)."
        ),
        no_cache: bool = typer.Option(
            False, "--no-cache", help="Run every node; neither read nor write the result cache."
        ),
        server: ServerOption = None,
        api_key: ApiKeyOption = None,
    ) -> None:
        """Run a workflow, showing node states live, and print its outputs.

        With --server the workflow document is sent to that rayweave server and runs there. A .py file is
        built here into its document first: @node functions defined in the file itself cannot run on a
        remote server unless they come from a plugin installed there (the server reports them as unknown
        node types).
        """
        if server:
            if address or local or no_optimize:
                typer.echo(
                    "error: --address, --local and --no-optimize apply to local runs; drop them or --server "
                    "(which may come from RAYWEAVE_SERVER)",
                    err=True,
                )
                raise typer.Exit(2)
            from serve.cli.remote_cmds import run_remote

            raise typer.Exit(run_remote(server, api_key, file, input, as_json, cache=not no_cache))
        raise typer.Exit(
            run_command(file, input, as_json, address, not no_optimize, local, cache=not no_cache)
        )

    cache = typer.Typer(help="Inspect and purge the durable result cache.", no_args_is_help=True)

    @cache.command("stats")
    def stats(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
        """Entries and bytes of the durable cache, per node type."""
        raise typer.Exit(cache_stats(as_json))

    @cache.command("purge")
    def purge(
        node_type: str | None = typer.Option(None, "--node-type", help="Only results of this node type."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Delete cached results (all, or one node type's)."""
        raise typer.Exit(cache_purge(node_type, as_json))

    app.add_typer(cache, name="cache")
