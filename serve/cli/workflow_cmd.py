"""`rayweave validate FILE` (diagnostics as text, JSON or SARIF) and `rayweave schema` (the document schema).

Exit status of `validate`: 0 when the workflow has no errors, 1 when it has errors (including a file that
is not valid JSON/YAML or not a workflow document: those are diagnostics with a line and column), 2 on bad
usage or a file that cannot be read. No command prints a traceback.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from serve.cli.remote import ApiKeyOption, ServerOption
from serve.cli.workflow_files import Unreadable

if TYPE_CHECKING:
    from serve.cli.backends import CatalogBackend


class OutputFormat(StrEnum):
    """Output formats of `rayweave validate`."""

    text = "text"
    json = "json"
    sarif = "sarif"


def _render_text(path: Path, diagnostics: list[Any]) -> str:
    lines = []
    for d in diagnostics:
        where = f"{path}:{d.line}:{d.column or 1}" if d.line is not None else str(path)
        location = d.location()
        text = f"{where}: {d.code} {d.severity}"
        text += f" {location}: {d.message}" if location else f": {d.message}"
        if d.hint:
            text += f"\n    hint: {d.hint}"
        lines.append(text)
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = sum(d.severity == "warning" for d in diagnostics)
    if errors:
        lines.append(f"{path}: {errors} error(s), {warnings} warning(s)")
    else:
        lines.append(f"{path}: ok ({warnings} warning(s))")
    return "\n".join(lines)


def _backend(server: str | None, api_key: str | None) -> CatalogBackend:
    """The backend of this invocation: the server checks the workflow with `--server`, else this process."""
    if server:
        from serve.cli.remote_cmds import RemoteCatalog

        return RemoteCatalog(server, api_key)
    from serve.cli.catalogs import LocalCatalog

    return LocalCatalog()


def validate_command(
    file: Path = typer.Argument(..., help="A workflow file: .json, .yaml/.yml, or .py defining `workflow`."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f", help="Output format."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    insert_conversions: bool = typer.Option(
        False, "--insert-conversions", help="Allow the compiler to insert conversion nodes where needed."
    ),
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Type-check a workflow file and report diagnostics with stable codes (exit 1 when there are errors).

    With --server the server checks it against its own catalog (its installed plugins). A .py file is built
    here into its document first; @node functions defined in the file itself are unknown to a remote server
    unless they come from a plugin installed there.
    """
    fmt = OutputFormat.json if as_json else output_format
    if server and insert_conversions:
        typer.echo("rayweave validate: --insert-conversions is not available with --server", err=True)
        raise typer.Exit(2)
    try:
        diagnostics = _backend(server, api_key).validate(file, insert_conversions)
    except typer.Exit:
        raise
    except Unreadable as exc:
        typer.echo(f"rayweave validate: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a compiler bug must still not show a traceback to the user
        typer.echo(f"rayweave validate: internal error on {file}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    errors = sum(d.severity == "error" for d in diagnostics)
    if fmt is OutputFormat.text:
        typer.echo(_render_text(file, diagnostics))
    elif fmt is OutputFormat.json:
        report = {
            "file": str(file),
            "valid": errors == 0,
            "errors": errors,
            "warnings": sum(d.severity == "warning" for d in diagnostics),
            "diagnostics": [d.to_json() for d in diagnostics],
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        from engine.compile.sarif import to_sarif

        typer.echo(json.dumps(to_sarif(diagnostics, uri=file.as_posix()), indent=2))
    raise typer.Exit(1 if errors else 0)


def schema_command(
    as_json: bool = typer.Option(False, "--json", help="Accepted for symmetry; the schema is always JSON."),
) -> None:
    """Print the JSON Schema of the workflow document format (rayweave.workflow/1)."""
    del as_json
    from engine.workflow.document import workflow_json_schema

    typer.echo(json.dumps(workflow_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    """Add `validate` and `schema` to the `rayweave` app."""
    app.command("validate")(validate_command)
    app.command("schema")(schema_command)
