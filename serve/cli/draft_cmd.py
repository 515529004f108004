"""`rayweave draft "DESCRIPTION"`: a draft workflow from a description in words (`engine.drafts`).

```
rayweave draft "read a CSV and average column x" [--save] [--name NAME] [--rounds N] [--out FILE] [--json]
               [--user NAME] [--url URL]
rayweave draft "..." --server URL [--api-key KEY]
```
Without `--server` this process asks the model the settings name (RAYWEAVE_DRAFT_BASE_URL, RAYWEAVE_DRAFT_MODEL,
RAYWEAVE_DRAFT_API_KEY) with this installation's catalog, and `--save` stores the draft in the installation's
database as a workflow of `--user` (default: owner `local`, as the store's other local writes). With `--server` the server drafts (POST
/v1/workflows/draft) and saves as the key's user. The draft is printed (or written to `--out`); the diagnostics
that remain and the repair rounds go to stderr. Exit status: 0 for a valid draft, 1 when the draft stayed
invalid or the model endpoint failed, 2 on bad usage or no endpoint configured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.remote import ApiKeyOption, ServerOption, connect, diagnostic_lines, talking_to
from serve.cli.stores import fail, open_store_or_exit, os_actor, user_or_exit

#: How long the command waits for a server's draft (the server waits for the model once per round).
SERVER_TIMEOUT_S = 600.0


def _local(
    ctx: typer.Context,
    description: str,
    *,
    save: bool,
    name: str | None,
    rounds: int | None,
    user: str | None,
    url: str | None,
) -> dict[str, Any]:
    """The draft made in this process (`DraftOut`'s JSON form); exits on failure."""
    from engine.drafts import (
        DraftConfigError,
        DraftEndpointError,
        DraftNotValidError,
        complete,
        draft_workflow,
        endpoint_from,
    )
    from serve.cli.catalogs import catalog_for

    settings = settings_of(ctx)
    needs_store = save or (
        settings.draft_api_key is not None and settings.draft_api_key.get_secret_value().startswith("secret:")
    )
    store = open_store_or_exit(url or settings.resolved_database_url) if needs_store else None
    try:
        owner = user_or_exit(store, user) if store is not None and save and user is not None else None
        try:
            endpoint = endpoint_from(settings, store)
        except DraftConfigError as exc:
            fail(str(exc), 2)
        catalog = catalog_for(settings)
        chosen = settings.draft_repair_rounds if rounds is None else rounds
        try:
            draft = draft_workflow(description, catalog, lambda m: complete(endpoint, m), rounds=chosen)
        except DraftEndpointError as exc:
            fail(str(exc))
        except DraftNotValidError as exc:
            _not_valid(str(exc), [d.to_json() for d in exc.diagnostics], exc.document)
        except ValueError as exc:
            fail(str(exc), 2)
        out = draft.to_json() | {"workflow_id": None, "version": None}
        if name is not None:
            out["workflow"] = {**out["workflow"], "name": name}
        if store is not None and save:
            from engine.compile import validate

            if any(d.severity == "error" for d in validate(out["workflow"], catalog)):
                fail(f"the draft renamed to {name!r} does not validate; choose another --name")
            version = store.workflows.create(
                out["workflow"],
                name=name,
                owner=owner.id if owner is not None else "local",
                author=owner.username if owner is not None else os_actor(),
                message="drafted from a description",
            )
            out["workflow_id"], out["version"] = version.workflow_id, version.version
        return out
    finally:
        if store is not None:
            store.close()


def _remote(
    server: str, api_key: str | None, description: str, *, save: bool, name: str | None, rounds: int | None
) -> dict[str, Any]:
    """The draft made by the server (`POST /v1/workflows/draft`); exits on failure."""
    from serve.errors import ClientError

    client = connect(server, api_key)
    body: dict[str, Any] = {"description": description, "save": save, "name": name, "rounds": rounds}
    try:
        with talking_to(server):
            try:
                answer: dict[str, Any] = client.post(
                    "/v1/workflows/draft",
                    json={k: v for k, v in body.items() if v is not None},
                    timeout=SERVER_TIMEOUT_S,
                )
                return answer
            except ClientError as exc:
                if exc.status == 422 and "draft" in (exc.problem or {}):
                    _not_valid(
                        str(exc.problem.get("detail")),
                        exc.problem.get("diagnostics") or [],
                        exc.problem["draft"],
                    )
                raise
    finally:
        client.close()
    raise AssertionError("unreachable")  # talking_to exits on every error


def _not_valid(message: str, diagnostics: list[dict[str, Any]], document: Any) -> None:
    """Print why the draft stayed invalid (and, when there is one, where the last draft is) and exit 1."""
    typer.echo(f"error: {message}", err=True)
    for line in diagnostic_lines({"diagnostics": diagnostics}):
        typer.echo(line, err=True)
    if document is not None:
        typer.echo("the last draft:", err=True)
        typer.echo(json.dumps(document, indent=2), err=True)
    raise typer.Exit(1)


def draft_command(
    ctx: typer.Context,
    description: Annotated[str, typer.Argument(help="What the workflow should do, in words.")],
    save: Annotated[bool, typer.Option("--save", help="Store a valid draft as a new workflow.")] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="The workflow's name (default: the model's).")
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds", min=0, max=10, help="Repair rounds (default: RAYWEAVE_DRAFT_REPAIR_ROUNDS)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the draft workflow to this JSON file.")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Who owns a saved draft, without --server (default: local).")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Draft a workflow from a description with an OpenAI-compatible model, checked and repaired against the
    compiler's diagnostics (see docs/guides/drafts.md)."""
    if server:
        result = _remote(server, api_key, description, save=save, name=name, rounds=rounds)
    else:
        result = _local(ctx, description, save=save, name=name, rounds=rounds, user=user, url=url)
    text = json.dumps(result["workflow"], indent=2)
    if out is not None:
        out.write_text(text + "\n")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif out is None:
        typer.echo(text)
    for line in diagnostic_lines({"diagnostics": result.get("diagnostics") or []}):
        typer.echo(line, err=True)
    typer.echo(f"valid after {result['repair_rounds']} repair round(s)", err=True)
    if result.get("workflow_id"):
        typer.echo(f"saved as workflow {result['workflow_id']} (version {result['version']})", err=True)


def register(app: typer.Typer) -> None:
    """Add `draft` to the `rayweave` app."""
    app.command("draft")(draft_command)
