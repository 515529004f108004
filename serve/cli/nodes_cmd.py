"""`rayweave nodes`: list node types (filtered by category or port type) and generate their reference docs.

```
rayweave nodes [--json] [--category C] [--accepts T] [--produces T]
rayweave nodes docs [--out DIR] [--check] [--json]
rayweave nodes suggest [WORKFLOW_ID | --file FILE] [--node N] [--port P] [--side S] [-q TEXT]  (cli.suggestions)
```
Exit status: 0 on success, 1 when `--check` finds pages that differ, 2 on bad usage (e.g. a malformed type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodes import Catalog
from serve.cli.remote import ApiKeyOption, ServerOption

if TYPE_CHECKING:
    from serve.cli.backends import CatalogBackend

DEFAULT_DOCS_DIR = Path("docs/nodes")


def _catalog() -> Catalog:
    # The built-in library only: loading installed plugins means starting Ray (each plugin is read inside its
    # own runtime environment), too heavy for a listing; `rayweave plugins docs` documents plugins.
    return Catalog.builtin()


def _backend(server: str | None, api_key: str | None) -> CatalogBackend:
    """The backend of this invocation: the server's catalog with `--server`, else this installation's."""
    if server:
        from serve.cli.remote_cmds import RemoteCatalog

        return RemoteCatalog(server, api_key)
    from serve.cli.catalogs import LocalCatalog

    return LocalCatalog()


def _fail_usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def list_nodes(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
    category: Annotated[str | None, typer.Option("--category", help="Only nodes of this category.")] = None,
    accepts: Annotated[
        str | None,
        typer.Option("--accepts", help="Only nodes with an input port taking this type, e.g. 'Int'."),
    ] = None,
    produces: Annotated[
        str | None, typer.Option("--produces", help="Only nodes with an output port of this type.")
    ] = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List the node types of the catalog with their ports (with --server: that server's catalog, plugins
    included)."""
    if ctx.invoked_subcommand is not None:
        return
    import typesys

    if server and (accepts or produces):
        _fail_usage("--accepts/--produces are not available with --server; use --category or --json")
    try:
        nodes = _backend(server, api_key).nodes(category, accepts, produces)
    except typesys.TypeParseError as exc:
        _fail_usage(f"cannot read the type given to --accepts/--produces: {exc}")
        return
    if as_json:
        typer.echo(json.dumps({"nodes": nodes}, indent=2))
        return
    _print_table(nodes)


def _ports(ports: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['name']}: {p['type']}" for p in ports)


def _print_table(nodes: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(nodes)} node types", show_lines=False)
    for column in ("id", "category", "inputs", "params", "outputs", "description"):
        table.add_column(column, overflow="fold")
    for n in nodes:
        description = n.get("description") or ""
        # escape: port types such as List[Int] would otherwise be read as Rich markup.
        table.add_row(
            escape(n["id"]),
            escape(n.get("category") or ""),
            escape(_ports(n.get("inputs") or [])),
            escape(_ports(n.get("params") or [])),
            escape(_ports(n.get("outputs") or [])),
            escape(description.splitlines()[0] if description else ""),
        )
    Console().print(table)


def docs(
    out: Annotated[Path, typer.Option("--out", help="Directory of the generated pages.")] = DEFAULT_DOCS_DIR,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the pages in --out differ.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Generate the Markdown node reference (one page per plugin and per node) into --out."""
    from nodes.docgen import check_docs, write_docs

    catalog = _catalog()
    if check:
        differences = check_docs(catalog, out)
        if as_json:
            typer.echo(json.dumps({"ok": not differences, "out": str(out), "differences": differences}))
        elif differences:
            typer.echo(
                f"{len(differences)} page(s) in {out} differ from the catalog; run `rayweave nodes docs`:"
            )
            for rel in differences:
                typer.echo(f"  {rel}")
        else:
            typer.echo(f"{out} is up to date")
        if differences:
            raise typer.Exit(1)
        return
    changed = write_docs(catalog, out)
    if as_json:
        typer.echo(json.dumps({"ok": True, "out": str(out), "changed": changed}))
    else:
        typer.echo(f"wrote {out} ({len(changed)} page(s) changed)")


def register(app: typer.Typer) -> None:
    """Add `rayweave nodes` (and `rayweave nodes docs`, `rayweave nodes suggest`) to the `rayweave` app."""
    nodes_app = typer.Typer(help="List node types and generate their docs.", no_args_is_help=False)
    nodes_app.callback(invoke_without_command=True)(list_nodes)
    nodes_app.command("docs")(docs)
    from serve.cli.suggestions import suggest_command

    nodes_app.command("suggest")(suggest_command)
    app.add_typer(nodes_app, name="nodes")
