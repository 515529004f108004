"""`rayweave run FILE` (run a workflow with live node states) and `rayweave cache stats|purge`.

`run` takes a .json/.yaml workflow document or a .py file with a module-level `workflow` (a builder).
Inputs are given as `--input name=value`, each value parsed by the input's declared type (`--input n=3` is
the integer 3 for an `Int` input; structured types take JSON). Without `--json` the node states are shown
live in the terminal and the outputs printed at the end; with `--json` one JSON document is printed
(run id, status, outputs, skipped outputs, per-node status); a run that cannot start prints one JSON document
too, with `status` `invalid` and the compiler's `diagnostics` (as `rayweave validate --json` gives them) or
`status` `error` and the message. `--target NODE` (repeatable) runs only those nodes and their ancestors ("run
to here"; the outputs are the targets' ports, `node__port`), locally or on a `--server`. Exit status: 0 succeeded, 1 the run failed, was cancelled or the workflow
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
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from serve.cli.context import settings_of
from serve.cli.live import follow, node_ids, print_outputs
from serve.cli.remote import ApiKeyOption, ServerOption
from serve.cli.workflow_files import UsageError, invalid_workflow, load_any, parse_inputs, report_failure

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.execution.executor import Executor
    from engine.execution.result import RunResult
    from serve.cli.backends import RunBackend


class LocalRunner:
    """The `run` backend without `--server`: the workflow runs from this process, durably recorded in the
    installation's store (see the module docstring).

    `settings`: the invocation's (with `--address` applied). `optimize`: fusion and deduplication on.
    `local`: run in this process instead of on Ray (debugging). `targets`: run only those nodes and their
    ancestors.
    """

    def __init__(
        self, settings: Settings, *, optimize: bool = True, local: bool = False, targets: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self.optimize = optimize
        self.local = local
        self.targets = list(targets)

    def run(self, file: Path, inputs: list[str], *, as_json: bool, cache: bool) -> int:
        """Run the workflow in `file`; returns the exit status (`cache=False`: run every node, leave the result
        cache alone). The workflow is compiled once, here, and Ray is ensured once, here. With `as_json` stdout
        holds the one JSON document only: what else would go there meanwhile (what nodes print, the worker log
        lines and autoscaler events Ray forwards to the driver) goes to stderr."""
        with json_stdout(as_json) as out:
            return self._run(file, inputs, as_json=as_json, cache=cache, out=out)

    def _run(self, file: Path, inputs: list[str], *, as_json: bool, cache: bool, out: TextIO) -> int:
        import ray
        from rich.console import Console

        from cluster.errors import ClusterConnectionError
        from engine.errors import WorkflowInputError, WorkflowValidationError
        from engine.execution.api import compile_for_run
        from nodes.objectstore import ObjectStoreError
        from serve.cli.catalogs import catalog_for

        settings, local = self.settings, self.local
        console = Console(stderr=as_json)
        already_connected = ray.is_initialized()
        try:
            workflow = load_any(file)
            # Installed plugins are read inside their runtime environments, which may start Ray already.
            catalog = catalog_for(settings)
            plan = compile_for_run(
                workflow, catalog=catalog, optimize=self.optimize, targets=self.targets or None
            )
            values = parse_inputs(inputs, {name: spec.type for name, spec in plan.inputs.items()})
        except UsageError as exc:
            return report_failure(console, as_json, file, exc, out=out)
        except WorkflowValidationError as exc:
            return report_failure(console, as_json, file, invalid_workflow(file, exc), out=out)
        except ClusterConnectionError as exc:
            return report_failure(console, as_json, file, exc, out=out)
        if not local:
            from cluster.ray_runtime import ensure_ray

            try:
                ensure_ray(settings)
            except ClusterConnectionError as exc:
                return report_failure(console, as_json, file, exc, out=out)
        started_ray = ray.is_initialized() and not already_connected
        try:
            try:
                unshared = None if local else unshared_store(settings)
                if unshared is None:
                    from engine.durable.runner import DurableRunner

                    # Recorded in the store like a run started through the API (see the module docstring); the
                    # runner starts the plan compiled above, with the same catalog and optimization.
                    runner = DurableRunner(
                        settings, executor="local" if local else "ray", catalog=catalog, cache=True
                    )
                    handle = runner.launch(
                        workflow,
                        values,
                        optimize=self.optimize,
                        cache=cache,
                        plan=plan,
                        targets=self.targets or None,
                    ).handle
                else:
                    from engine.execution.api import submit
                    from engine.execution.ray.executor import RayExecutor

                    console.print(
                        f"[yellow]note:[/yellow] this run is not recorded in the store: {unshared}",
                        highlight=False,
                        soft_wrap=True,
                    )
                    executor = RayExecutor.for_settings(settings)
                    handle = submit(plan, values, settings=settings, executor=executor, cache=cache)
            except WorkflowInputError as exc:
                return report_failure(console, as_json, file, UsageError(str(exc)), out=out)
            except ObjectStoreError as exc:  # the result store or cache cannot be reached (names the setting)
                return report_failure(console, as_json, file, exc, out=out)
            result = follow(handle, plan.name, console, live=not as_json, nodes=node_ids(plan))
            if as_json:
                print(json.dumps(result.to_json(), default=repr), file=out)
            else:
                print_outputs(console, result)
            return 0 if result.ok else 1
        finally:
            if started_ray:
                from cluster.ray_runtime import shutdown_ray

                shutdown_ray()


def unshared_store(settings: Settings) -> str | None:
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


def run_live(
    workflow: Any,
    inputs: dict[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run `workflow` showing its node states live in the terminal, print its outputs, return the result.

    For scripts and demos (`examples/quickstart.py`), which are entry points: `settings` default to the
    environment's, read here once. Ray is started (loopback only) when not connected. The workflow is compiled
    once, here.
    """
    from rich.console import Console

    from engine.execution.api import compile_for_run, submit

    if settings is None:
        from cluster.settings import Settings

        settings = Settings()
    if executor is None:
        from cluster.ray_runtime import ensure_ray
        from engine.execution.ray.executor import RayExecutor

        ensure_ray(settings)
        executor = RayExecutor.for_settings(settings)
    console = Console()
    plan = compile_for_run(workflow)
    handle = submit(plan, inputs, settings=settings, executor=executor)
    result: RunResult = follow(handle, plan.name, console, live=True, nodes=node_ids(plan))
    print_outputs(console, result)
    return result


@contextlib.contextmanager
def json_stdout(as_json: bool) -> Iterator[TextIO]:
    """The real stdout, for the JSON document; with `as_json`, `sys.stdout` is stderr meanwhile (Ray's driver
    looks `sys.stdout` up at every line it forwards, so its lines follow)."""
    real = sys.stdout
    if not as_json:
        yield real
        return
    sys.stdout = sys.stderr
    try:
        yield real
    finally:
        sys.stdout = real


def cache_stats(settings: Settings, as_json: bool) -> int:
    """Print the durable cache's entries and bytes per node type."""
    from rich.console import Console
    from rich.table import Table

    from engine.cache.result_cache import ResultCache

    try:
        stats = ResultCache.for_settings(settings).stats().get("disk")
    except OSError as exc:  # the cache's store cannot be reached (nodes.objectstore names the setting)
        typer.echo(f"error: {exc}", err=True)
        return 2
    by_type = dict(stats.by_type) if stats is not None else {}
    if as_json:
        doc = {
            "cache_dir": str(settings.resolved_cache_uri),
            "entries": stats.entries if stats else 0,
            "bytes": stats.bytes if stats else 0,
            "by_node_type": {k: {"entries": n, "bytes": b} for k, (n, b) in sorted(by_type.items())},
        }
        print(json.dumps(doc))
        return 0
    table = Table(title=f"cache at {settings.resolved_cache_uri}")
    for column in ("node type", "entries", "bytes"):
        table.add_column(column)
    for node_type, (count, size) in sorted(by_type.items()):
        table.add_row(node_type, str(count), str(size))
    table.add_row("[bold]total[/bold]", str(stats.entries if stats else 0), str(stats.bytes if stats else 0))
    Console().print(table)
    return 0


def cache_purge(settings: Settings, node_type: str | None, as_json: bool) -> int:
    """Delete cached results (of one node type when given)."""
    from engine.cache.result_cache import ResultCache

    try:
        removed = ResultCache.for_settings(settings).purge(node_type)["disk"]
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    if as_json:
        print(json.dumps({"removed": removed, "node_type": node_type}))
    else:
        what = f" of node type {node_type}" if node_type else ""
        print(f"removed {removed} cached result(s){what}")
    return 0


def _backend(
    ctx: typer.Context,
    server: str | None,
    api_key: str | None,
    *,
    address: str | None,
    optimize: bool,
    local: bool,
    targets: Sequence[str] = (),
) -> RunBackend:
    """The backend of this invocation: the server's with `--server`, else this installation's."""
    if server:
        from serve.cli.remote_cmds import RemoteRunner

        return RemoteRunner(server, api_key, targets=targets)
    return LocalRunner(
        settings_of(ctx, ray_address=address or None), optimize=optimize, local=local, targets=targets
    )


def register(app: typer.Typer) -> None:
    """Add `run` and the `cache` group to the `rayweave` app."""

    @app.command("run")
    def run(
        ctx: typer.Context,
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
        target: list[str] = typer.Option(
            [],
            "--target",
            help="Run only this node and its ancestors (repeatable); the outputs are its ports (node__port).",
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
        if server and (address or local or no_optimize):
            typer.echo(
                "error: --address, --local and --no-optimize apply to local runs; drop them or --server "
                "(which may come from RAYWEAVE_SERVER)",
                err=True,
            )
            raise typer.Exit(2)
        backend = _backend(
            ctx, server, api_key, address=address, optimize=not no_optimize, local=local, targets=target
        )
        raise typer.Exit(backend.run(file, input, as_json=as_json, cache=not no_cache))

    cache = typer.Typer(help="Inspect and purge the durable result cache.", no_args_is_help=True)

    @cache.command("stats")
    def stats(
        ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")
    ) -> None:
        """Entries and bytes of the durable cache, per node type."""
        raise typer.Exit(cache_stats(settings_of(ctx), as_json))

    @cache.command("purge")
    def purge(
        ctx: typer.Context,
        node_type: str | None = typer.Option(None, "--node-type", help="Only results of this node type."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Delete cached results (all, or one node type's)."""
        raise typer.Exit(cache_purge(settings_of(ctx), node_type, as_json))

    app.add_typer(cache, name="cache")
