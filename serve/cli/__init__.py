"""The `rayweave` command line: one Typer app assembled from small command modules.

Each command module owns one group of commands and exposes `register(app)`; this module only assembles them,
so that commands can be added without touching each other. Command modules never import each other: what they
share lives below them (`context`, `workflow_files`, `live`, `remote`, `backends`, `catalogs`, `remote_cmds`).
"""

from __future__ import annotations

import typer

from serve.cli import (
    analytics_cmd,
    audit_cmd,
    context,
    db_cmd,
    draft_cmd,
    keys_cmd,
    models_cmd,
    nodes_cmd,
    plugins_cmd,
    ray_cmd,
    run_cmd,
    runs_cmd,
    secrets_cmd,
    serve_cmd,
    types_cmd,
    users_cmd,
    webhooks_cmd,
    workflow_cmd,
)


def build_app() -> typer.Typer:
    """Return the `rayweave` Typer application with every command group registered."""
    app = typer.Typer(
        name="rayweave",
        help="Typed, durable workflow graphs on Ray.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # One `CliContext` per invocation: the settings are built once and passed to the command (`settings_of`).
    app.callback()(context.start)
    for module in (
        types_cmd,
        nodes_cmd,
        workflow_cmd,
        run_cmd,
        db_cmd,
        plugins_cmd,
        serve_cmd,
        runs_cmd,
        keys_cmd,
        ray_cmd,
        audit_cmd,
        secrets_cmd,
        models_cmd,
        analytics_cmd,
        users_cmd,
        webhooks_cmd,
        draft_cmd,
    ):
        module.register(app)
    return app


def main() -> None:
    """Entry point of the `rayweave` console script."""
    build_app()()
