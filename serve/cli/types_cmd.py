"""`rayweave types`: the type catalog, and whether one port type can feed another.

```
rayweave types [--json]
rayweave types check SOURCE TARGET [--json]
```
`types check` says whether a value of SOURCE can flow into a port of type TARGET and how: "identity" (a
subtype, passed as is), "implicit" (converted silently, e.g. Int -> Float) or "explicit" (only through the
named conversion node, e.g. builtin/to_int@1). Exit status: 0 when the ports connect without a conversion
node (identity or implicit), 1 when they do not, 2 when a type is malformed (the parse error is printed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serve.cli.options import JsonOption
from serve.cli.remote import ApiKeyOption, ServerOption

if TYPE_CHECKING:
    from serve.cli.backends import CatalogBackend
    from serve.cli.catalogs import LocalCatalog


def _local(ctx: typer.Context) -> LocalCatalog:
    """This installation's catalog (its registry includes the types its plugins register)."""
    from serve.cli.catalogs import LocalCatalog
    from serve.cli.context import settings_of

    return LocalCatalog(settings_of(ctx))


def _backend(ctx: typer.Context, server: str | None, api_key: str | None) -> CatalogBackend:
    """The backend of this invocation: the server's catalog with `--server`, else this installation's."""
    if server:
        from serve.cli.remote_cmds import RemoteCatalog

        return RemoteCatalog(server, api_key)
    return _local(ctx)


def catalog(
    ctx: typer.Context,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List the built-in types, their parents and the coercion rules between them (with --server: that
    server's types, plugin types included)."""
    if ctx.invoked_subcommand is not None:
        return
    data = _backend(ctx, server, api_key).types()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    # Plain text, not Rich: type texts contain brackets that Rich would read as markup.
    lines = ["types (name: parents)"]
    lines += [f"  {p['name']}: {', '.join(p['parents']) or '-'}" for p in data["primitives"]]
    lines += [f"  {n['name']}: {n['parent']}" for n in data["nominal"]]
    lines += ["structured types", *(f"  {s}" for s in data["structured"])]
    lines.append("coercion rules (source -> target, kind, cost, conversion node)")
    for r in data["coercions"]:
        arrow = f"{r['source']} -> {r['target']}"
        lines.append(
            f"  {arrow:<36} {r['kind']:<9} {r['cost']:<5g} {r['node'] or '-':<30} {r['description']}"
        )
    lines.append(
        "also implicit: T -> T | U; List, Dict, Tuple and records element by element; runtime-checked "
        "Any -> T, Table -> Table[...], Dict[String, Any] -> record"
    )
    typer.echo("\n".join(lines))


def check_types(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The producing type, e.g. 'List[Int]'.")],
    target: Annotated[str, typer.Argument(help="The consuming port type, e.g. 'List[Float] | Null'.")],
    as_json: JsonOption = False,
) -> None:
    """Is SOURCE assignable to TARGET, and with which coercion?"""
    import typesys

    registry = _local(ctx).registry()
    parsed: list[typesys.Type] = []
    for role, text in (("SOURCE", source), ("TARGET", target)):
        try:
            parsed.append(typesys.parse(text, registry))
        except typesys.TypeParseError as exc:
            typer.echo(f"error: {role}: {exc}", err=True)
            if as_json:
                error = {
                    "argument": role,
                    "message": str(exc),
                    "position": exc.position,
                    "expected": exc.expected,
                }
                typer.echo(json.dumps({"error": error}))
            raise typer.Exit(2) from None
    s, t = parsed
    answer = typesys.is_assignable(s, t, registry)
    coercion = typesys.find_coercion(s, t, registry)
    connects = coercion is not None and coercion.kind != "explicit"
    if as_json:
        document = {
            "source": str(s),
            "target": str(t),
            "assignable": connects,
            "subtype": answer.ok,
            "reason": answer.reason,
            "coercion": coercion.to_json() if coercion is not None else None,
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(_describe(s, t, answer, coercion))
    if not connects:
        raise typer.Exit(1)


def _describe(s: Any, t: Any, answer: Any, coercion: Any) -> str:
    if coercion is None:
        return f"no: {answer.reason}; no coercion exists"
    if coercion.kind == "identity":
        return f"yes: {s} is a subtype of {t}"
    steps = " -> ".join(
        f"{step.target}" + (f" ({step.node})" if step.node else "") for step in coercion.steps
    )
    if coercion.kind == "implicit":
        return f"yes, with an implicit coercion (cost {coercion.cost:g}): {s} -> {steps}"
    return (
        f"no: {answer.reason}\n"
        f"explicit coercion (cost {coercion.cost:g}) through conversion node(s) {', '.join(coercion.nodes)}: "
        f"{s} -> {steps}"
    )


def register(app: typer.Typer) -> None:
    """Add `rayweave types` (and `rayweave types check`) to the `rayweave` app."""
    types_app = typer.Typer(help="The port type catalog and type checks.", no_args_is_help=False)
    types_app.callback(invoke_without_command=True)(catalog)
    types_app.command("check")(check_types)
    app.add_typer(types_app, name="types")
