"""`rayweave export WORKFLOW_ID --format ray` and `rayweave export --file FILE --format ray`: a workflow as a
standalone script of plain Ray tasks (`engine.formats.ray_script`), for users who leave rayweave.

Exit status: 0 when the script is written, 1 when the workflow does not compile, 2 when it uses what the
script does not translate (each node and what is listed) or on bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from serve.cli.context import settings_of
from serve.cli.stores import fail


def load_file(file: Path) -> Any:
    """The workflow in `file` (.json, .yaml or a .py builder); exits 2 when unreadable, 1 when not a workflow.

    A .py file inside the current directory is imported by its module name (`examples/flow.py` as
    `examples.flow`), so that the script can import its node functions by that name too."""
    from serve.cli.workflow_files import UsageError, load_any

    if file.suffix.lower() == ".py":
        workflow = _import_by_name(file)
        if workflow is not None:
            return workflow
    try:
        return load_any(file)
    except UsageError as exc:
        fail(str(exc), exc.exit_status)


def _import_by_name(file: Path) -> Any:
    """The module-level `workflow` of `file` imported as a module of the current directory, or None when the
    file is not importable so (outside the directory, not a package path, or its import fails)."""
    import importlib
    import sys

    try:
        parts = file.resolve().relative_to(Path.cwd().resolve()).with_suffix("").parts
    except ValueError:
        return None
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(".".join(parts))
    except Exception:  # the user's code: load_any then reports the failure with its line
        return None
    return getattr(module, "workflow", None)


def export_ray(ctx: typer.Context, workflow: Any, source: str) -> str:
    """The script's text for `workflow` (a document, its data or a builder), compiled against this
    installation's catalog; exits 1 when it does not compile and 2 naming what is not translated."""
    from engine.errors import ExportError, WorkflowValidationError
    from engine.formats.ray_script import ray_script
    from serve.cli.catalogs import catalog_for

    try:
        return ray_script(workflow, catalog_for(settings_of(ctx)))
    except WorkflowValidationError as exc:
        fail(f"{source}: {exc}", 1)
    except ExportError as exc:
        fail(f"{source}: {exc}", 2)
    raise AssertionError("unreachable")
