"""The `--server URL` backends of `run`, `runs list|show|events|cancel`, `validate`, `nodes` and `types`.

Each mirrors its local backend's output and exit status but goes through `serve.client.Client`. A .py workflow
file is built locally into its JSON document before it is sent, so `@node` functions defined in that file are not
available on the server unless they come from a plugin installed there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from nodes.ids import RunId
from nodes.states import RunStatus
from serve.cli.live import LiveView, status_style
from serve.cli.remote import (
    connect,
    diagnostic_lines,
    events_until,
    fail,
    problem_line,
    talking_to,
)
from serve.cli.workflow_files import (
    InvalidWorkflowError,
    Unreadable,
    UsageError,
    declared_inputs,
    document_of,
    load_any,
    load_py_workflow,
    parse_inputs,
    report_failure,
)

LOCAL_NODES_NOTE = (
    "note: @node functions defined in a .py workflow file do not exist on the server; only node types of "
    "plugins installed on the server can run (or be validated) there"
)


def _unknown_types(diagnostics: list[dict[str, Any]]) -> bool:
    # RW101: unknown node type (engine.compile.diagnostics).
    return any(d.get("code") == "RW101" for d in diagnostics)


def _print_run(
    console: Any,
    run: dict[str, Any],
    outputs: dict[str, Any],
    skipped: list[str] | None = None,
    omitted: list[dict[str, Any]] | None = None,
) -> None:
    from rich.markup import escape

    style = status_style(run["status"])
    console.print()
    console.print(f"run [bold]{run['id']}[/bold]: [{style}]{run['status']}[/{style}]")
    for node in run.get("nodes") or ():
        error = node.get("error")
        if error and error.get("type") != "UpstreamFailedError":
            text = f"node {node['node']!r} failed: {error.get('type')}: {error.get('message')}"
            console.print(f"[red]{escape(text)}[/red]", highlight=False, soft_wrap=True)
    for name, value in outputs.items():
        console.print(f"[bold]{name}[/bold] =", value)
    for name in skipped or ():
        console.print(f"[bold]{name}[/bold] [dim]skipped (its node's branch was not taken)[/dim]")
    for item in omitted or ():
        text = escape(f"not sent by the server: {item.get('message', '')}")
        console.print(f"[bold]{escape(str(item.get('name')))}[/bold] [yellow]{text}[/yellow]", soft_wrap=True)


def _invalid(file: Path, document: dict[str, Any], diagnostics: list[dict[str, Any]]) -> Any:
    """The `InvalidWorkflowError` of the diagnostics a server gave for the workflow in `file`."""
    import dataclasses

    from engine.compile.diagnostics import Diagnostic

    names = {f.name for f in dataclasses.fields(Diagnostic)}
    found = [Diagnostic(**{k: v for k, v in d.items() if k in names}) for d in diagnostics]
    name = str(document.get("name", ""))
    return InvalidWorkflowError(f"workflow {name!r} does not compile", found, name)


class _Remote:
    """A backend talking to the rayweave server at `server` (with `api_key`, else the client's default)."""

    def __init__(self, server: str, api_key: str | None) -> None:
        self.server = server
        self.api_key = api_key


class RemoteRunner(_Remote):
    """The `run` backend of `--server`: the document is sent inline and runs on the server (only `targets` and
    their ancestors when given)."""

    def __init__(self, server: str, api_key: str | None, *, targets: Sequence[str] = ()) -> None:
        super().__init__(server, api_key)
        self.targets = list(targets)

    def run(self, file: Path, inputs: list[str], *, as_json: bool, cache: bool) -> int:
        """`rayweave run FILE --server URL`: submit the document inline, follow its events, print the outputs."""
        from rich.console import Console

        console = Console(stderr=as_json)
        try:
            document = document_of(load_any(file))
            values = parse_inputs(inputs, declared_inputs(document))
        except UsageError as exc:
            return report_failure(console, as_json, file, exc)
        client = connect(self.server, self.api_key)
        with client, talking_to(self.server):
            from serve.errors import ClientError

            try:
                handle = client.submit(document, values, cache=cache, targets=self.targets or None)
            except ClientError as exc:
                # Missing or ill-typed inputs are bad usage, as locally; other invalid workflows are failed checks.
                diagnostics = exc.problem.get("diagnostics") or []
                if exc.status == 422 and diagnostics and all(d.get("code") == "inputs" for d in diagnostics):
                    if as_json:
                        return report_failure(
                            console,
                            True,
                            file,
                            UsageError(f"server {self.server}: {exc.problem.get('detail')}"),
                        )
                    fail(f"server {self.server}: {exc.problem.get('detail')}", 2)
                if as_json and exc.status == 422 and diagnostics:
                    return report_failure(console, True, file, _invalid(file, document, diagnostics))
                if file.suffix.lower() == ".py" and _unknown_types(diagnostics):
                    typer.echo(f"error: {problem_line(self.server, exc)}", err=True)
                    for line in diagnostic_lines(exc.problem):
                        typer.echo(line, err=True)
                    typer.echo(LOCAL_NODES_NOTE, err=True)
                    raise typer.Exit(1) from None
                raise
            try:
                if not as_json:
                    from rich.live import Live

                    view = LiveView(str(document.get("name", "")), list(document.get("nodes") or {}))
                    with Live(view.render(), console=console, refresh_per_second=8) as display:
                        for event in handle.events():
                            view.apply(event)
                            display.update(view.render())
                run = handle.wait()
            except KeyboardInterrupt:
                handle.cancel()
                run = handle.wait()
            answer = (
                client.get(f"/v1/runs/{run['id']}/outputs") if run["status"] == RunStatus.SUCCEEDED else {}
            )
            outputs = dict(answer.get("outputs") or {})
            skipped = list(answer.get("skipped_outputs") or [])
            omitted = list(answer.get("omitted_outputs") or [])
        if as_json:
            doc = {
                "run_id": run["id"],
                "workflow": document.get("name"),
                "status": run["status"],
                "outputs": outputs,
                "skipped_outputs": skipped,
                "omitted_outputs": omitted,
                "nodes": {n["node"]: n for n in run.get("nodes") or ()},
                "started_at": run.get("started_at"),
                "finished_at": run.get("finished_at"),
                "server": self.server,
            }
            print(json.dumps(doc))
        else:
            _print_run(console, run, outputs, skipped, omitted)
        return 0 if run["status"] == RunStatus.SUCCEEDED else 1


class RemoteRuns(_Remote):
    """The `runs` backend of `--server`: the server's runs, through its HTTP API."""

    def list(self, status: list[str] | None, workflow: str | None, limit: int, as_json: bool) -> None:
        """`rayweave runs list --server URL`."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if workflow:
            params["workflow_id"] = workflow
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            page = client.get("/v1/runs", params=params)
        rows = page["items"]
        if as_json:
            typer.echo(json.dumps({"runs": rows, "next_cursor": page.get("next_cursor")}, indent=2))
            return
        if not rows:
            typer.echo("no runs")
            return
        for row in rows:
            typer.echo(
                f"{row['id']}  {row['status']:<10} {row['workflow_id'] or '-':<30} {row['created_at']}"
            )

    def show(self, run_id: RunId, as_json: bool) -> None:
        """`rayweave runs show RUN_ID --server URL`: the run, its nodes and its outputs."""
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            handle = client.run(run_id)
            data = handle.status()
            answer = client.get(f"/v1/runs/{run_id}/outputs") if data["status"] == RunStatus.SUCCEEDED else {}
            data["outputs"] = dict(answer.get("outputs") or {})
            data["skipped_outputs"] = list(answer.get("skipped_outputs") or [])
            data["omitted_outputs"] = list(answer.get("omitted_outputs") or [])
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        typer.echo(f"run {data['id']}: {data['status']}")
        for node in data.get("nodes") or ():
            error = node.get("error")
            text = f"  {error.get('type', '')}: {error.get('message', '')}" if error else ""
            typer.echo(f"  {node['node']:<24} attempts {node['attempts']}  {node['status']}{text}")
        for name, value in data["outputs"].items():
            typer.echo(f"  output {name} = {value!r}")
        for name in data["skipped_outputs"]:
            typer.echo(f"  output {name} skipped (its node's branch was not taken)")
        for item in data["omitted_outputs"]:
            typer.echo(f"  output {item.get('name')} not sent by the server: {item.get('message', '')}")
        if data.get("error"):
            typer.echo(f"  error: {json.dumps(data['error'])}")

    def events(self, run_id: RunId, after: int, follow: bool, as_json: bool) -> None:
        """`rayweave runs events RUN_ID --server URL`: the events so far, or (with `follow`) until the run ends."""
        collected: list[dict[str, Any]] = []
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            handle = client.run(run_id)
            last = handle.status()["last_seq"]
            stream = handle.events(after) if follow else events_until(handle, after, last)
            for event in stream:
                if as_json:
                    collected.append(event.to_json())
                else:
                    node = f" {event.node}" if event.node else ""
                    typer.echo(f"{event.seq:>6} {event.time} {event.type}{node}")
        if as_json:
            typer.echo(json.dumps({"run_id": run_id, "events": collected}, indent=2))

    def cancel(self, run_id: RunId, as_json: bool) -> None:
        """`rayweave runs cancel RUN_ID --server URL` (exit 1 when the run has already ended)."""
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            handle = client.run(run_id)
            status = handle.status()["status"]
            if status in RunStatus.terminal():
                fail(f"run {run_id!r} is already {status}; only queued or running runs can be cancelled")
            status = handle.cancel()["status"]
        if as_json:
            typer.echo(json.dumps({"run_id": run_id, "status": status}))
        else:
            typer.echo(
                f"run {run_id} cancelled"
                if status == RunStatus.CANCELLED
                else f"run {run_id}: cancel requested"
            )


class RemoteCatalog(_Remote):
    """The catalog backend of `--server`: the server's node and type catalog (its plugins included), and its
    checks of a workflow."""

    def nodes(self, category: str | None, accepts: str | None, produces: str | None) -> list[dict[str, Any]]:
        """The server's node catalog (of one category when given; the command refuses `accepts`/`produces`)."""
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            nodes: list[dict[str, Any]] = client.get(
                "/v1/nodes", params={"category": category} if category else {}
            )["nodes"]
        return nodes

    def types(self) -> dict[str, Any]:
        """The server's type catalog."""
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            return client.types()

    def validate(self, file: Path, insert_conversions: bool) -> list[Any]:
        """Diagnostics for `file` from the server's POST /v1/workflows/validate, located in the file's text.

        A file that does not load as a workflow document gets its diagnostics locally (nothing to send).
        """
        import dataclasses

        from engine.compile.diagnostics import Diagnostic
        from engine.compile.parse import load_diagnostics
        from engine.compile.sarif import locate
        from engine.errors import WorkflowLoadError
        from engine.workflow.loader import load_workflow_text

        text: str | None = None
        if not file.is_file():
            raise Unreadable(f"{file}: no such file")
        if file.suffix.lower() == ".py":
            document = document_of(load_py_workflow(file))
        else:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise Unreadable(f"{file}: cannot be read: {exc}") from None
            try:
                is_json = file.suffix.lower() == ".json"
                document = load_workflow_text(text, "json" if is_json else None, source=str(file)).to_data()
            except WorkflowLoadError as exc:
                return load_diagnostics(exc)
        names = {f.name for f in dataclasses.fields(Diagnostic)}
        with connect(self.server, self.api_key) as client, talking_to(self.server):
            answer = client.validate(document)
        if text is None and _unknown_types(answer["diagnostics"]):
            typer.echo(LOCAL_NODES_NOTE, err=True)
        diagnostics = [
            Diagnostic(**{k: v for k, v in d.items() if k in names}) for d in answer["diagnostics"]
        ]
        return locate(diagnostics, text) if text is not None else diagnostics
