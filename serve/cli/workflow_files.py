"""Reading a workflow file for a command: loading it (.json/.yaml documents, .py builders), parsing `--input`
values by their declared types, and reporting why a run cannot start.

Shared by the local and the `--server` side of `run` and `validate`, so neither command module imports the
other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from serve.cli.remote import fail

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


class Unreadable(Exception):
    """The file cannot be read as a workflow at all (`rayweave validate` exits 2)."""


def report_failure(console: Any, as_json: bool, file: Path, exc: Exception, *, out: Any = None) -> int:
    """Report why a run could not start and return the exit status: 1 for a workflow that does not compile (its
    diagnostics) or a cluster that cannot be reached, 2 for bad usage. With `as_json` the report is one JSON
    document on stdout (`out` if given; `status` is `invalid` or `error`), else a message on the console."""
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
        print(json.dumps(doc), file=out or sys.stdout)
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


def load_py_workflow(path: Path) -> Any:
    """Import the Python file ``path`` and return its module-level ``workflow`` (a builder `Workflow`), for
    `rayweave validate`: a failure raises `Unreadable` naming the line of the file it happened on."""
    name = f"_rayweave_workflow_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise Unreadable(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is reported, never shown as a traceback
        line = _traceback_line(exc, path)
        raise Unreadable(
            f"{path}{line}: importing the workflow file failed: {type(exc).__name__}: {exc}"
        ) from None
    workflow = getattr(module, "workflow", None)
    if workflow is None:
        raise Unreadable(
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


def diagnose(path: Path, insert_conversions: bool) -> tuple[list[Any], str | None]:
    """The diagnostics for ``path`` (checked in this process) and the file's text (None for
    Python files); a file that cannot be read raises `Unreadable`."""
    from engine.compile import validate
    from engine.compile.parse import load_diagnostics
    from engine.compile.sarif import locate
    from engine.errors import WorkflowLoadError
    from engine.workflow.loader import load_workflow_text

    if not path.is_file():
        raise Unreadable(f"{path}: no such file")
    if path.suffix.lower() == ".py":
        return validate(load_py_workflow(path), insert_conversions=insert_conversions), None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(f"{path}: cannot be read: {exc}") from None
    try:
        doc = load_workflow_text(text, "json" if path.suffix.lower() == ".json" else None, source=str(path))
    except WorkflowLoadError as exc:
        return load_diagnostics(exc), text
    return locate(validate(doc, insert_conversions=insert_conversions), text), text


def document_of(workflow: Any) -> dict[str, Any]:
    """The canonical JSON document of a builder `Workflow` or a `WorkflowDoc`."""
    from engine.errors import WorkflowBuildError

    try:
        data: dict[str, Any] = workflow.to_data()
    except WorkflowBuildError as exc:
        fail(str(exc), 2)
    return data


def declared_inputs(document: dict[str, Any]) -> dict[str, str]:
    """Input name -> canonical type text (the raw text when this process cannot parse it, e.g. plugin types)."""
    import typesys

    declared = {}
    for name, spec in (document.get("inputs") or {}).items():
        text = str((spec or {}).get("type", "Any")) if isinstance(spec, dict) else str(spec)
        try:
            declared[name] = str(typesys.parse(text))
        except typesys.TypeParseError:
            declared[name] = text
    return declared
