"""`rayweave nodes suggest` (registered by `nodes_cmd`): the node types to add next to a workflow (`engine.suggest`).

```
rayweave nodes suggest [WORKFLOW_ID | --file FILE] [--node N] [--port P] [--side output|input] [-q TEXT]
                       [--limit 10] [--text auto|lexical|embeddings] [--json] [--server URL] [--api-key K]
```
From a stored workflow (its id) or a workflow file (JSON, YAML or .py; it may be partial), from the port
`--port` of node `--node`, and/or a text query `-q`. Locally, history comes from every workflow of this
installation; with `--server`, from those the key may see there. Exit status: 0 (also when there is nothing
to suggest: the reason is printed), 1 for an unknown workflow, node or port, 2 on bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.remote import ApiKeyOption, ServerOption, connect, talking_to
from serve.cli.stores import fail, open_store_or_exit


def _document(file: Path) -> dict[str, Any]:
    from serve.cli.workflow_files import InvalidWorkflowError, UsageError, load_any

    try:
        loaded = load_any(file)
    except UsageError as exc:
        fail(str(exc), 2)
    except InvalidWorkflowError as exc:
        fail(f"{file} is not a workflow document: {exc}", 2)
    doc = loaded.to_doc() if callable(getattr(loaded, "to_doc", None)) else loaded
    data: dict[str, Any] = doc.to_data() if callable(getattr(doc, "to_data", None)) else dict(doc)
    return data


def suggest_command(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Argument(help="A stored workflow's id.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A workflow file instead (may be partial; not stored)."),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="The selected node's id.")] = None,
    port: Annotated[
        str | None, typer.Option("--port", help="Its port (may be left out when it has one on that side).")
    ] = None,
    side: Annotated[
        str, typer.Option("--side", help="output: what may read the port; input: what may feed it.")
    ] = "output",
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Text to match against node docs.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="At most this many suggestions.")
    ] = 10,
    text: Annotated[
        str | None,
        typer.Option(
            "--text", help="Text similarity: auto, lexical or embeddings (default RAYWEAVE_SUGGEST_TEXT)."
        ),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Suggest the node types to add next after (or before) a port of a workflow, or for a text query."""
    if side not in ("output", "input"):
        fail(f"--side {side!r}: give output or input", 2)
    if workflow and file:
        fail("give a workflow id or --file, not both", 2)
    if node is None and not query:
        fail("give --node (with the workflow) or a text query -q", 2)
    if node is not None and not (workflow or file):
        fail(f"--node {node!r} needs the workflow: its id or --file", 2)
    if text is not None and text not in ("auto", "lexical", "embeddings"):
        fail(f"--text {text!r}: give auto, lexical or embeddings", 2)
    document = _document(file) if file else None
    params = {"node": node, "port": port, "side": side, "q": query, "limit": limit}
    if server:
        with connect(server, api_key) as client, talking_to(server):
            if workflow:
                answer = client.get(
                    "/v1/suggestions",
                    params={"workflow_id": workflow, **{k: v for k, v in params.items() if v is not None}},
                )
            else:
                answer = client.post("/v1/suggestions", json={"workflow": document, **params})
        _print(answer, as_json)
        return
    answer = _local(ctx, url, workflow, document, params, text)
    _print(answer, as_json)


def _local(
    ctx: typer.Context,
    url: str | None,
    workflow: str | None,
    document: dict[str, Any] | None,
    params: dict[str, Any],
    text: str | None,
) -> dict[str, Any]:
    from engine.suggest import SuggestError
    from engine.suggest.service import SuggestionService, stored_document
    from serve.cli.catalogs import catalog_for

    settings = settings_of(ctx, suggest_text=text)
    store = open_store_or_exit(url or settings.resolved_database_url)
    try:
        if workflow:
            document = stored_document(store, workflow)
        service = SuggestionService(settings.suggest_text)
        result = service.suggest(
            store,
            catalog_for(settings),
            document=document,
            node=params["node"],
            port=params["port"],
            side=params["side"],
            query=params["q"],
            limit=params["limit"],
        )
    except SuggestError as exc:
        fail(str(exc))
        raise
    finally:
        store.close()
    return result.to_json()


def _print(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    anchor = answer.get("anchor")
    title = "suggestions"
    if anchor:
        arrow = "after" if anchor["side"] == "output" else "before"
        title = f"{arrow} {anchor['node']}.{anchor['port']} ({anchor['node_type']}, {anchor['type']})"
    console = Console()
    items = answer.get("suggestions") or []
    if not items:
        console.print(escape(f"{title}: nothing to suggest: {answer.get('reason') or 'no candidates'}"))
        return
    table = Table(title=escape(title))
    for column in ("#", "node type", "port", "fit", "score", "description"):
        table.add_column(column, overflow="fold")
    for rank, item in enumerate(items, 1):
        fit = item.get("fit") or {}
        kind = fit.get("kind", "")
        if fit.get("via"):
            kind += f" via {', '.join(fit['via'])}"
        table.add_row(
            str(rank),
            escape(item["type"]),
            escape(item.get("port") or ""),
            escape(kind),
            f"{item['score']:.3f}",
            escape(item.get("description") or ""),
        )
    console.print(table)
    for note in answer.get("notes") or ():
        console.print(escape(f"note: {note}"))
