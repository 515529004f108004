"""`rayweave db ...` (schema upgrades, copying an installation between databases), `rayweave export|import`.

```
rayweave db upgrade [--url URL] [--json]
rayweave db migrate --to URL [--url URL] [--json]
rayweave db prune [--older-than DAYS] [--dry-run] [--limit N] [--url URL] [--json]
rayweave export WORKFLOW_ID [--version N] [--format json|yaml] [--out FILE] [--url URL]
rayweave export --all [--runs] --out FILE [--url URL]
rayweave export --format ndjson|cloudevents [--kinds K,...] [--since TIME] [--out FILE|-] [--url URL]
rayweave export WORKFLOW_ID --format ray [--version N] [--out FILE] [--url URL]   (a script of plain Ray tasks)
rayweave export --file FILE --format ray [--out FILE]
rayweave import FILE [--workflow ID] [--url URL] [--json]      (FILE.ndjson, FILE.jsonl or - : an NDJSON export)
```
Without `--url` the database is the installation's (`RAYWEAVE_DATABASE_URL`, or SQLite under `RAYWEAVE_HOME`).
Exit status: 0 on success, 1 when the operation failed, 2 on bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodes.ids import WorkflowId
from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    from engine.store import SqlStore, Store


def _database_url(ctx: typer.Context, url: str | None) -> str:
    """`--url`, else the installation's database (the invocation's settings are read only then)."""
    return url or settings_of(ctx).resolved_database_url


def _installation_store(ctx: typer.Context, url: str | None) -> Store:
    """The store at `--url`, else the installation's (its workflows as files when `RAYWEAVE_WORKFLOWS_DIR` is
    set, so an export shows the files' latest edits and an import writes files)."""
    if url:
        return open_store_or_exit(url)
    settings = settings_of(ctx)
    return open_store_or_exit(settings.resolved_database_url, settings.workflows_dir)


def _archive_store(store: Store, what: str) -> SqlStore:
    """`store` as the SQL store the JSON archive reads and writes; another backend closes it and exits 2 naming
    what does the same there (NDJSON, `db migrate`)."""
    from engine.store import SqlStore

    if isinstance(store, SqlStore):
        return store
    store.close()
    fail(
        f"{what} reads and writes SQL tables; the {store.backend} store {store.url} exports with `rayweave export "
        "--format ndjson` and imports such a file, or copies to and from a SQL database with `rayweave db "
        "migrate --to URL`",
        2,
    )


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def upgrade(ctx: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Bring the database schema to the version this rayweave needs (creates it when empty)."""
    from engine.store import MigrationError, backend_errors
    from engine.store.migrate import head_revision, upgrade_at
    from engine.store.open import is_redis_url

    if is_redis_url(_database_url(ctx, url)):
        with open_store_or_exit(_database_url(ctx, url)) as store:
            shown = store.url
        _emit(
            as_json, {"url": shown, "changed": False}, f"{shown}: a Redis store has no schema (nothing to do)"
        )
        return
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
    """Copy a whole installation to another database (any two of SQLite, PostgreSQL, MariaDB/MySQL and Redis),
    verified by counts and content hashes. Re-running after an interruption resumes the copy where it stopped; a
    target holding other data is refused. Stop every writer of the source first."""
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
        report = copy_installation(source, target, progress=None if as_json else _progress)
    except failures as exc:
        fail(f"{exc}; the copy can be re-run safely")
        return
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume the copy where it stopped")
        return
    finally:
        source.close()
        target.close()
    lines = [f"{t}: {c['source']} rows, {c['copied']} copied, hash ok" for t, c in report.tables.items()]
    head = f"{'resumed' if report.resumed else 'copied'} {report.source} -> {report.target}"
    _emit(as_json, report.to_json(), "\n".join([head, *lines]))


def prune(
    ctx: typer.Context,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="Delete runs finished more than this many days ago (default: RAYWEAVE_RETENTION_DAYS).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the runs; delete nothing.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Delete at most this many runs.")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete finished runs older than a retention period with their events, attempts and stored results
    (queued and running runs are never touched); audited as `runs.pruned`."""
    from engine.durable.errors import ResultStoreError
    from engine.durable.results import result_store_for
    from engine.durable.retention import cutoff_for, prune_runs
    from engine.store import backend_errors

    settings = settings_of(ctx)
    days = older_than if older_than is not None else settings.retention_days
    if days is None:
        fail("say how old a run must be: --older-than DAYS, or set RAYWEAVE_RETENTION_DAYS", 2)
        return
    try:
        cutoff = cutoff_for(days)
    except ValueError as exc:
        fail(f"--older-than: {exc}", 2)
        return
    failures: tuple[type[Exception], ...] = (ResultStoreError, *backend_errors())
    store = _installation_store(ctx, url)
    try:
        # Results live where the installation keeps them; with --url naming another database they are not ours.
        results = None if url else result_store_for(settings)
        outcome = prune_runs(store, results, older_than=cutoff, dry_run=dry_run, limit=limit, actor="cli")
    except failures as exc:
        fail(f"pruning stopped: {exc}; the runs deleted so far stay deleted, run it again to go on")
        return
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    _emit(as_json, outcome.to_json(), f"{verb} {outcome.runs} runs finished before {cutoff.isoformat()}")


def _progress(table: str, rows: int) -> None:
    typer.echo(f"  {table}: {rows} rows copied", err=True)


def export_command(
    ctx: typer.Context,
    workflow_id: Annotated[
        str | None, typer.Argument(help="The workflow to export (omit with --all).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Export this version (default: latest).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="json or yaml (single workflows); ndjson: stream every record as NDJSON (cloudevents: with "
            "events as CloudEvents); ray: a standalone Python script running the workflow as plain Ray tasks.",
        ),
    ] = "json",
    everything: Annotated[
        bool, typer.Option("--all", help="Export the whole installation as one archive (JSON).")
    ] = False,
    runs: Annotated[
        bool, typer.Option("--runs", help="With --all: include runs, node runs and events.")
    ] = False,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Write to this file (a path or an s3:// URL) instead of stdout."),
    ] = None,
    url: UrlOption = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            "--kinds", help="With --format ndjson: workflows,workflow_versions,runs,node_runs,events."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --format ndjson: records changed from this time on.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="With --format ray: export this workflow file (.json, .yaml, .py) instead."
        ),
    ] = None,
) -> None:
    """Export one workflow version as a JSON/YAML document, everything as an archive, or every record as an
    NDJSON stream (`--format ndjson`, constant memory)."""
    import yaml

    from engine.store import NotFoundError
    from engine.store.archive import export_archive

    if fmt == "ray" or file is not None:
        _export_ray_script(ctx, workflow_id, version, file, fmt, url, out)
        return
    if fmt in ("ndjson", "cloudevents"):
        _export_ndjson(ctx, url, out, kinds, since, fmt, workflow_id is not None or everything)
        return

    if everything == (workflow_id is not None):
        fail("give either a WORKFLOW_ID or --all", 2)
    if fmt not in ("json", "yaml"):
        fail(f"--format must be json, yaml, ndjson, cloudevents or ray, not {fmt!r}", 2)
    store = _installation_store(ctx, url)
    try:
        if everything:
            archive = export_archive(_archive_store(store, "export --all"), include_runs=runs)
            text = json.dumps(archive, indent=1, sort_keys=True) + "\n"
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
        _write_out(ctx, out, text.encode("utf-8"))


def _export_ray_script(
    ctx: typer.Context,
    workflow_id: str | None,
    version: int | None,
    file: Path | None,
    fmt: str,
    url: str | None,
    out: str | None,
) -> None:
    """`--format ray`: the stored workflow (or `--file`) as a standalone script of plain Ray tasks."""
    from engine.store import NotFoundError
    from serve.cli.ray_export import export_ray, load_file

    if fmt != "ray":
        fail(f"--file goes with --format ray (a workflow file is already JSON or YAML), not {fmt!r}", 2)
    if (file is None) == (workflow_id is None):
        fail("give either a WORKFLOW_ID or --file FILE", 2)
    if file is not None:
        text = export_ray(ctx, load_file(file), str(file))
    else:
        assert workflow_id is not None
        store = _installation_store(ctx, url)
        try:
            wanted = WorkflowId(workflow_id)
            row = (
                store.workflows.get_version(wanted, version)
                if version is not None
                else store.workflows.latest(wanted)
            )
        except NotFoundError as exc:
            fail(str(exc))
        finally:
            store.close()
        text = export_ray(ctx, row.document, f"workflow {workflow_id}")
    if out is None:
        typer.echo(text, nl=False)
    else:
        _write_out(ctx, out, text.encode("utf-8"))


def _write_out(ctx: typer.Context, out: str, data: bytes) -> None:
    """Write an export to `--out` (a path or an s3:// URL, `nodes.objectstore`) atomically."""
    from nodes.objectstore import S3Options, file_location

    try:
        folder, name = file_location(out, "--out", S3Options.of(settings_of(ctx)))
        folder.write_bytes(name, data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}", 2)


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
    from serve.cli.ndjson_io import is_ndjson

    if is_ndjson(file):
        _import_ndjson(ctx, url, file, as_json)
        return
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}", 2)
        return
    if not isinstance(data, dict):
        fail(f"{file} holds no workflow document or archive (a mapping at the top level)", 2)
        return
    store = _installation_store(ctx, url)
    try:
        if data.get("format") == ARCHIVE_FORMAT:
            report = import_archive(_archive_store(store, "importing an archive"), data)
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


def _export_ndjson(
    ctx: typer.Context,
    url: str | None,
    out: str | None,
    kinds: str | None,
    since: str | None,
    fmt: str,
    single: bool,
) -> None:
    from engine.store.ndjson import parse_kinds
    from nodes.objectstore import S3Options
    from serve.cli.ndjson_io import export_ndjson, parse_since

    if single:
        fail("--format ndjson exports every record; leave out WORKFLOW_ID and --all (use --kinds)", 2)
    try:
        start = parse_since(since)
        parse_kinds(kinds)
    except ValueError as exc:
        fail(str(exc), 2)
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        export_ndjson(
            store,
            out,
            kinds=kinds,
            since=start,
            events="cloudevents" if fmt == "cloudevents" else "native",
            s3=S3Options.of(settings_of(ctx)),
        )
    except OSError as exc:
        fail(f"cannot write {out}: {exc}", 2)
    finally:
        store.close()


def _import_ndjson(ctx: typer.Context, url: str | None, file: Path, as_json: bool) -> None:
    from engine.store.ndjson import NdjsonError
    from serve.cli.ndjson_io import import_ndjson

    store = open_store_or_exit(_database_url(ctx, url))
    try:
        report = import_ndjson(store, file)
    except NdjsonError as exc:
        fail(f"{file}: {exc}")
    except OSError as exc:
        fail(f"cannot read {file}: {exc}", 2)
    finally:
        store.close()
    _emit(
        as_json,
        report.to_json(),
        f"imported {file}: {report.lines} lines; added {report.added or 'nothing'}; updated "
        f"{report.updated or 'nothing'}; already present {report.skipped or 'nothing'}",
    )


def register(app: typer.Typer) -> None:
    """Add `rayweave db ...`, `rayweave export` and `rayweave import` to the `rayweave` app."""
    db = typer.Typer(name="db", help="Database schema and copies between databases.", no_args_is_help=True)
    db.command("upgrade")(upgrade)
    db.command("migrate")(migrate)
    db.command("prune")(prune)
    app.add_typer(db, name="db")
    app.command("export")(export_command)
    app.command("import")(import_command)
