"""`rayweave db ...` (schema upgrades, copying an installation between databases) and `rayweave stats`.

```
rayweave db upgrade [--url URL] [--json]
rayweave db migrate --to URL [--url URL] [--json]
rayweave export WORKFLOW_ID [--version N] [--format json|yaml] [--out FILE] [--url URL]
rayweave export --all [--runs] --out FILE [--url URL]
rayweave import FILE [--workflow ID] [--url URL] [--json]
rayweave stats [--url URL] [--workflow ID] [--since YYYY-MM-DD] [--bucket day] [--out DIR] [--json]
```
Without `--url` the database is the installation's (`RAYWEAVE_DATABASE_URL`, or SQLite under `RAYWEAVE_HOME`).
Exit status: 0 on success, 1 when the operation failed, 2 on bad usage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from nodes.ids import WorkflowId
from nodes.states import RunStatus
from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    pass


def _database_url(ctx: typer.Context, url: str | None) -> str:
    """`--url`, else the installation's database (the invocation's settings are read only then)."""
    return url or settings_of(ctx).resolved_database_url


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def upgrade(ctx: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Bring the database schema to the version this rayweave needs (creates it when empty)."""
    from engine.store import MigrationError, backend_errors
    from engine.store.migrate import head_revision, upgrade_at

    failures: tuple[type[Exception], ...] = (MigrationError, *backend_errors())
    try:
        outcome = upgrade_at(_database_url(ctx, url))
    except (ValueError, ImportError) as exc:
        fail(f"cannot use database URL: {exc}", 2)
        return
    except failures as exc:
        fail(str(exc))
        return
    shown, before, after = outcome.url, outcome.before, outcome.after
    changed = before != after
    _emit(
        as_json,
        {"url": shown, "from": before, "to": after, "head": head_revision(), "changed": changed},
        f"{shown}: upgraded from {before or 'empty'} to {after}"
        if changed
        else f"{shown}: already at {after} (nothing to do)",
    )


def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="URL of the database to copy the installation into.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy a whole installation to another database (SQLite <-> PostgreSQL), verified by counts and content
    hashes. Re-running after an interruption finishes the copy; rows already copied are kept."""
    from engine.store import MigrationError, backend_errors
    from engine.store.transfer import copy_installation

    failures: tuple[type[Exception], ...] = (MigrationError, *backend_errors())
    source = open_store_or_exit(_database_url(ctx, url))
    try:
        target = open_store_or_exit(to)
    except typer.Exit:
        source.close()
        raise
    try:
        report = copy_installation(source, target)
    except failures as exc:
        fail(f"{exc}; the copy can be re-run safely")
        return
    finally:
        source.close()
        target.close()
    lines = [f"{t}: {c['source']} rows, {c['copied']} copied, hash ok" for t, c in report.tables.items()]
    _emit(as_json, report.to_json(), "\n".join([f"copied {report.source} -> {report.target}", *lines]))


def export_command(
    ctx: typer.Context,
    workflow_id: Annotated[
        str | None, typer.Argument(help="The workflow to export (omit with --all).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Export this version (default: latest).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or yaml (single workflows).")] = "json",
    everything: Annotated[
        bool, typer.Option("--all", help="Export the whole installation as one archive (JSON).")
    ] = False,
    runs: Annotated[
        bool, typer.Option("--runs", help="With --all: include runs, node runs and events.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    url: UrlOption = None,
) -> None:
    """Export one workflow version as a JSON/YAML document, or everything as an archive."""
    import yaml

    from engine.store import NotFoundError
    from engine.store.archive import export_archive

    if everything == (workflow_id is not None):
        fail("give either a WORKFLOW_ID or --all", 2)
    if fmt not in ("json", "yaml"):
        fail(f"--format must be json or yaml, not {fmt!r}", 2)
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        if everything:
            text = json.dumps(export_archive(store, include_runs=runs), indent=1, sort_keys=True) + "\n"
        else:
            assert workflow_id is not None
            wanted = WorkflowId(workflow_id)
            try:
                row = (
                    store.workflows.get_version(wanted, version)
                    if version is not None
                    else store.workflows.latest(wanted)
                )
            except NotFoundError as exc:
                fail(str(exc))
                return
            if fmt == "yaml":
                text = yaml.safe_dump(row.document, sort_keys=False, allow_unicode=True)
            else:
                text = json.dumps(row.document, indent=2, ensure_ascii=False) + "\n"
    finally:
        store.close()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A workflow (.json/.yaml) or an archive made by `export --all`.")
    ],
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow", help="Import a single document as a new version of this workflow."),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a workflow document (new workflow, or new version) or a whole archive; validated first."""
    import yaml

    from engine.store import NotFoundError
    from engine.store.archive import ARCHIVE_FORMAT, ArchiveError, import_archive, import_workflow

    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}", 2)
        return
    if not isinstance(data, dict):
        fail(f"{file} holds no workflow document or archive (a mapping at the top level)", 2)
        return
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        if data.get("format") == ARCHIVE_FORMAT:
            report = import_archive(store, data)
            result: dict[str, Any] = {
                "archive": str(file),
                "added": report.added,
                "skipped": report.skipped,  # not a state: items already present (the --json contract)
            }
            message = f"imported {file}: added {report.added or 'nothing'}; already present {report.skipped}"
        else:
            row = import_workflow(
                store,
                data,
                workflow_id=WorkflowId(workflow_id) if workflow_id is not None else None,
                message=f"imported from {file.name}",
            )
            result = {
                "workflow_id": row.workflow_id,
                "version": row.version,
                "content_hash": row.content_hash,
            }
            message = f"workflow {row.workflow_id} version {row.version}"
    except (ArchiveError, NotFoundError) as exc:
        fail(str(exc))
        return
    finally:
        store.close()
    _emit(as_json, result, message)


def stats_command(
    ctx: typer.Context,
    url: UrlOption = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow id.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Export and count from this day on (YYYY-MM-DD).")
    ] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help="Run durations per hour, day, week or month.")
    ] = "day",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Parquet export directory (default: RAYWEAVE_HOME/analytics)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many slowest node types to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Export run history to Parquet and report slow node types, failures, retries, cache hits and durations."""
    from engine.analytics import stats

    if bucket not in ("hour", "day", "week", "month"):
        fail(f"--bucket must be hour, day, week or month, not {bucket!r}", 2)
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--since must be a date like 2026-11-27, not {since!r}", 2)
    directory = out if out is not None else settings_of(ctx).home / "analytics"
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        report = stats(
            store,
            directory,
            workflow_id=workflow,
            since=start,
            bucket=_bucket(bucket),
            limit=limit,
        )
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=str))
        return
    _print_report(report)


def _bucket(value: str) -> Literal["hour", "day", "week", "month"]:
    if value == "hour":
        return "hour"
    if value == "week":
        return "week"
    if value == "month":
        return "month"
    return "day"


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
        t = Table(title=title)
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r])
        return t

    console = Console()
    console.print(f"exported {report.export.node_runs} node attempts, {report.export.runs} runs")
    console.print(
        table(
            "slowest node types (s)",
            ["node type", "attempts", "p50", "p95", "max"],
            [[s.node_type, s.attempts, s.p50_s, s.p95_s, s.max_s] for s in report.slowest_node_types],
        )
    )
    console.print(
        table(
            "failures and retries",
            ["node type", "executions", "failure rate", "attempt failure rate", "retries"],
            [
                [f.node_type, f.executions, f.failure_rate, f.attempt_failure_rate, r.retries]
                for f in report.failure_rates
                for r in report.retry_counts
                if r.node_type == f.node_type
            ],
        )
    )
    hits = report.cache_hit_rate
    console.print(f"cache hit rate: {hits.hit_rate:.1%} ({hits.hits} of {hits.executions} node executions)")
    console.print(
        table(
            "run durations (s)",
            ["bucket", "runs", RunStatus.SUCCEEDED, RunStatus.FAILED, "p50", "p95"],
            [[b.bucket, b.runs, b.succeeded, b.failed, b.p50_s, b.p95_s] for b in report.run_durations],
        )
    )
    console.print(
        table(
            "workflows",
            [
                "workflow",
                "runs",
                RunStatus.SUCCEEDED,
                RunStatus.FAILED,
                "p50",
                "p95",
                "cache hits",
                "retries",
            ],
            [
                [
                    w.workflow_id or "(inline)",
                    w.runs,
                    w.succeeded,
                    w.failed,
                    w.p50_s,
                    w.p95_s,
                    w.cache_hits,
                    w.retries,
                ]
                for w in report.workflows
            ],
        )
    )


def register(app: typer.Typer) -> None:
    """Add `rayweave db ...` and `rayweave stats` to the `rayweave` app."""
    db = typer.Typer(name="db", help="Database schema and copies between databases.", no_args_is_help=True)
    db.command("upgrade")(upgrade)
    db.command("migrate")(migrate)
    app.add_typer(db, name="db")
    app.command("stats")(stats_command)
    app.command("export")(export_command)
    app.command("import")(import_command)
