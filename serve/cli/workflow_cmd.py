"""`rayweave validate FILE` (diagnostics as text, JSON or SARIF) and `rayweave schema` (the document schema).

Exit status of `validate`: 0 when the workflow has no errors, 1 when it has errors (including a file that
is not valid JSON/YAML or not a workflow document: those are diagnostics with a line and column), 2 on bad
usage or a file that cannot be read. No command prints a traceback.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from serve.cli.remote import ApiKeyOption, ServerOption

_TEXT_SUFFIXES = (".json", ".yaml", ".yml")


class OutputFormat(StrEnum):
    """Output formats of `rayweave validate`."""

    text = "text"
    json = "json"
    sarif = "sarif"


class _Unreadable(Exception):
    """The file cannot be read as a workflow at all (exit status 2)."""


def load_py_workflow(path: Path) -> Any:
    """Import the Python file ``path`` and return its module-level ``workflow`` (a builder `Workflow`)."""
    name = f"_rayweave_workflow_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _Unreadable(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is reported, never shown as a traceback
        line = _traceback_line(exc, path)
        raise _Unreadable(
            f"{path}{line}: importing the workflow file failed: {type(exc).__name__}: {exc}"
        ) from None
    workflow = getattr(module, "workflow", None)
    if workflow is None:
        raise _Unreadable(
            f"{path}: defines no module-level 'workflow'; assign your builder to it: workflow = Workflow('name')"
        )
    return workflow


def _traceback_line(exc: BaseException, path: Path) -> str:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f":{line}" if line is not None else ""


def _diagnose(path: Path, insert_conversions: bool) -> tuple[list[Any], str | None]:
    """The diagnostics for ``path`` and the file's text (None for Python files)."""
    from engine.compile import validate
    from engine.compile.parse import load_diagnostics
    from engine.compile.sarif import locate
    from engine.errors import WorkflowLoadError
    from engine.workflow.loader import load_workflow_text

    if not path.is_file():
        raise _Unreadable(f"{path}: no such file")
    if path.suffix.lower() == ".py":
        return validate(load_py_workflow(path), insert_conversions=insert_conversions), None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"{path}: cannot be read: {exc}") from None
    try:
        doc = load_workflow_text(text, "json" if path.suffix.lower() == ".json" else None, source=str(path))
    except WorkflowLoadError as exc:
        return load_diagnostics(exc), text
    return locate(validate(doc, insert_conversions=insert_conversions), text), text


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
        if server:
            from serve.cli.remote_cmds import validate_remote

            diagnostics, _ = validate_remote(server, api_key, file)
        else:
            diagnostics, _ = _diagnose(file, insert_conversions)
    except typer.Exit:
        raise
    except _Unreadable as exc:
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
