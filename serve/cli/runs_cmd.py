"""`rayweave runs ...`: look at durable runs in the store, cancel them, resume orphaned ones.

```
rayweave runs list [--status S]... [--workflow ID] [--limit N] [--json]
rayweave runs show RUN_ID [--json]
rayweave runs events RUN_ID [--after SEQ] [--follow] [--json]
rayweave runs cancel RUN_ID [--json]
rayweave runs resume [RUN_ID] [--stale-after S] [--force] [--wait/--no-wait] [--timeout S] [--json]
```
With `--server URL` (or `RAYWEAVE_SERVER`), `list`, `show`, `events` and `cancel` go through that server's
HTTP API instead (`--api-key`, else `RAYWEAVE_API_KEY`, else `{home}/admin.key`); `resume` is local only.
Otherwise every command reads the installation's store (`RAYWEAVE_DATABASE_URL`, or SQLite under `RAYWEAVE_HOME`; `--url`
overrides) and result store (`{home}/results`; `--results` overrides). Exit status: 0 on success, 1 when the run
is unknown or the operation failed, 2 on bad usage.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodes.ids import RunId, WorkflowId
from nodes.states import RunStatus
from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.remote import ApiKeyOption, ServerOption
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.durable.results import ResultStore
    from engine.store import Store
    from serve.cli.backends import RunsBackend

ResultsOption = Annotated[
    str | None,
    typer.Option("--results", help="Result store directory or URI (default: {RAYWEAVE_HOME}/results)."),
]
RunIdArg = Annotated[str, typer.Argument(help="The run id (see `rayweave runs list`).")]


def _results(settings: Settings, uri: str | None) -> ResultStore:
    from engine.durable.results import result_store_for

    return result_store_for(settings, uri)


def _get_run(store: Store, run_id: RunId) -> Any:
    from engine.store import NotFoundError

    try:
        return store.runs.get(run_id)
    except NotFoundError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "workflow_id": run.workflow_id,
        "workflow_version": run.workflow_version,
        "workflow": (run.document or {}).get("name") if run.document else None,
        "owner": run.owner,
        "coordinator": run.coordinator,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "heartbeat_at": _iso(run.heartbeat_at),
        "error": run.error,
        "last_seq": run.last_seq,
    }


def _plain(value: Any) -> Any:
    from engine.durable.stored import plain_json

    return plain_json(value)


class LocalRuns:
    """The `runs` backend without `--server`: the installation's store and result store.

    `settings`: the invocation's. `url`: the database (`--url`; default: the settings'). `results`: the result
    store (`--results`; default: the settings').
    """

    def __init__(self, settings: Settings, url: str | None = None, results: str | None = None) -> None:
        self.settings = settings
        self.url = url
        self.results = results

    def _open(self) -> Store:
        return open_store_or_exit(self.url or self.settings.resolved_database_url)

    def _results(self) -> ResultStore:
        return _results(self.settings, self.results)

    def list(self, status: list[str] | None, workflow: str | None, limit: int, as_json: bool) -> None:
        """Runs of the store, newest first."""
        store = self._open()
        try:
            workflow_id = WorkflowId(workflow) if workflow else None
            page = store.runs.list(status=status or None, workflow_id=workflow_id, limit=limit)
        finally:
            store.close()
        rows = [_run_json(r) for r in page.items]
        if as_json:
            typer.echo(json.dumps({"runs": rows, "next_cursor": page.next_cursor}, indent=2))
            return
        if not rows:
            typer.echo("no runs")
            return
        for row in rows:
            name = row["workflow"] or row["workflow_id"] or "-"
            typer.echo(f"{row['id']}  {row['status']:<10} {name:<30} {row['created_at']}")

    def show(self, run_id: RunId, as_json: bool) -> None:
        """A run of the store, its nodes' attempts and its outputs (from the result store)."""
        from engine.durable.stored import StoredOutputs, read_outputs

        store = self._open()
        try:
            run = _get_run(store, run_id)
            attempts = store.node_runs.list(run_id)
            stored = (
                read_outputs(store, self._results(), run_id)
                if run.status == RunStatus.SUCCEEDED
                else StoredOutputs({})
            )
        finally:
            store.close()
        data = _run_json(run)
        data["nodes"] = [
            {
                "node": a.node_id,
                "attempt": a.attempt,
                "type": a.node_type,
                "status": a.status,
                "cache_hit": a.cache_hit,
                "started_at": _iso(a.started_at),
                "finished_at": _iso(a.finished_at),
                "error": a.error,
                "result_location": a.result_location,
            }
            for a in attempts
        ]
        data["outputs"] = {k: _plain(v) for k, v in stored.values.items()}
        data["skipped_outputs"] = list(stored.skipped)
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        typer.echo(f"run {run.id}: {run.status}")
        for node in data["nodes"]:
            error = (
                f"  {node['error'].get('type', '')}: {node['error'].get('message', '')}"
                if node["error"]
                else ""
            )
            typer.echo(f"  {node['node']:<24} attempt {node['attempt']}  {node['status']}{error}")
        for name, value in data["outputs"].items():
            typer.echo(f"  output {name} = {value!r}")
        for name in data["skipped_outputs"]:
            typer.echo(f"  output {name} skipped (its node's branch was not taken)")
        if run.error:
            typer.echo(f"  error: {json.dumps(run.error)}")

    def events(self, run_id: RunId, after: int, follow: bool, as_json: bool) -> None:
        """A run's events from the store (with `follow`: polling until the run ends)."""
        store = self._open()
        collected: list[dict[str, Any]] = []
        try:
            _get_run(store, run_id)
            while True:
                events = store.events.read(run_id, after=after)
                for event in events:
                    after = event.seq
                    if as_json:
                        collected.append(event.to_json())  # the API's form of an event, as with --server
                    else:
                        node = f" {event.node}" if event.node else ""
                        at = _iso(datetime.fromtimestamp(event.time, UTC))
                        typer.echo(f"{event.seq:>6} {at} {event.type}{node}")
                if not follow or (not events and store.runs.get(run_id).status in RunStatus.terminal()):
                    break
                if not events:
                    time.sleep(0.5)
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps({"run_id": run_id, "events": collected}, indent=2))

    def cancel(self, run_id: RunId, as_json: bool) -> None:
        """Mark the run cancelled; its coordinator stops its nodes at its next heartbeat."""
        from engine.store import RunStateError

        store = self._open()
        try:
            run = _get_run(store, run_id)
            try:
                run = store.runs.update_status(run_id, RunStatus.CANCELLED, only_from=RunStatus.active())
            except RunStateError:
                fail(f"run {run_id!r} is already {run.status}; only queued or running runs can be cancelled")
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps({"run_id": run_id, "status": run.status}))
        else:
            typer.echo(f"run {run_id} cancelled")


def _backend(
    ctx: typer.Context, server: str | None, api_key: str | None, url: str | None, results: str | None = None
) -> RunsBackend:
    """The backend of this invocation: the server's with `--server`, else the installation's store."""
    if server:
        from serve.cli.remote_cmds import RemoteRuns

        return RemoteRuns(server, api_key)
    return LocalRuns(settings_of(ctx), url, results)


def list_command(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only runs in this status (repeatable).")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only runs of this stored workflow.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs, newest first.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List runs, newest first."""
    _backend(ctx, server, api_key, url).list(status, workflow, limit, as_json)


def show_command(
    ctx: typer.Context,
    run_id: RunIdArg,
    url: UrlOption = None,
    results: ResultsOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A run: its status, every node's state and attempts, and its outputs (from the result store)."""
    _backend(ctx, server, api_key, url, results).show(RunId(run_id), as_json)


def events_command(
    ctx: typer.Context,
    run_id: RunIdArg,
    after: Annotated[int, typer.Option("--after", min=0, help="Only events after this sequence number.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new events until the run ends.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A run's events, in sequence order (with `--json`: one JSON document holding the list)."""
    _backend(ctx, server, api_key, url).events(RunId(run_id), after, follow, as_json)


def cancel_command(
    ctx: typer.Context,
    run_id: RunIdArg,
    url: UrlOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a queued or running run: it is marked cancelled, and its coordinator stops its nodes at its next
    heartbeat."""
    _backend(ctx, server, api_key, url).cancel(RunId(run_id), as_json)


def resume_command(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(help="Resume only this run (default: every orphaned run).")
    ] = None,
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after", min=0.0, help="Seconds without a heartbeat after which a run is orphaned."
        ),
    ] = 10.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Take RUN_ID over even if its heartbeat is recent (its coordinator is gone)."
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="Wait for the resumed runs to end (needed with an embedded Ray)."
        ),
    ] = True,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up waiting after this many seconds.")
    ] = None,
    url: UrlOption = None,
    results: ResultsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume orphaned runs (those whose coordinator stopped heartbeating); finished nodes are not run again."""
    from engine.durable.recovery import recover
    from engine.durable.runner import DurableRunner

    if force and run_id is None:
        fail("--force needs a RUN_ID (it takes over a run whatever its heartbeat says)", 2)
    wanted = RunId(run_id) if run_id is not None else None
    settings = settings_of(ctx)
    store = open_store_or_exit(url or settings.resolved_database_url)
    statuses: dict[RunId, str] = {}
    try:
        if wanted is not None:
            run = _get_run(store, wanted)
            if run.status not in RunStatus.active():
                fail(f"run {run_id!r} is already {run.status}; there is nothing to resume")
        # With the result cache, as `rayweave run` and the server launch runs: a resumed node whose result the
        # crash lost is answered from it when it can be (in the scope the run was launched in).
        runner = DurableRunner(settings, store=store, results=_results(settings, results), cache=True)
        handles: dict[RunId, Any] = {}
        resumed = recover(
            runner=runner,
            stale_after_s=0.0 if force else stale_after,
            run_ids=[wanted] if wanted is not None else None,
            handles=handles,
        )
        if wanted is not None and wanted not in resumed:
            run = store.runs.get(wanted)
            fail(
                f"run {run_id!r} was not resumed: it is {run.status}, last heartbeat {_iso(run.heartbeat_at)} from "
                f"{run.coordinator or 'no coordinator'}; it is still owned or another sweep took it (wait "
                f"{stale_after:g} s after its coordinator died, or pass --force if you know it is gone)"
            )
        for rid in resumed:
            statuses[rid] = RunStatus.RUNNING
            if wait:
                try:
                    statuses[rid] = str(handles[rid].result(timeout).status)
                except TimeoutError:
                    statuses[rid] = RunStatus.RUNNING
    finally:
        store.close()
    failed = any(s in (RunStatus.FAILED, RunStatus.CANCELLED) for s in statuses.values())
    if as_json:
        typer.echo(json.dumps({"resumed": list(statuses), "runs": statuses}, indent=2))
    elif not statuses:
        typer.echo("no orphaned runs")
    else:
        for rid, status in statuses.items():
            typer.echo(f"resumed run {rid}: {status}")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `rayweave runs ...` to the `rayweave` app."""
    runs = typer.Typer(
        name="runs", help="Durable runs: list, show, events, cancel, resume.", no_args_is_help=True
    )
    runs.command("list")(list_command)
    runs.command("show")(show_command)
    runs.command("events")(events_command)
    runs.command("cancel")(cancel_command)
    runs.command("resume")(resume_command)
    app.add_typer(runs, name="runs")
