"""`rayweave audit verify` and `rayweave audit export`: check the audit log's hash chain, and take it elsewhere.

```
rayweave audit verify [--url URL] [--json]
rayweave audit export [--url URL] [--out FILE] [--since 2026-12-01[T10:00:00]]
```
Both read the store directly (`RAYWEAVE_DATABASE_URL`, or the SQLite file under `RAYWEAVE_HOME`), no server.
`verify` recomputes every entry's hash and link (`engine.store.audit_chain`) and names the first broken entry;
with `--json` it prints the result as one JSON document. `export` writes the entries oldest first as NDJSON
(one entry a line, with `prev_hash` and `hash`), streamed, so a third party can check the file offline with
`engine.store.audit_chain.verify_lines` (an export `--since` a time starts mid-chain: check it with
`start_hash=None`). Keep the last line's `hash` (or `verify`'s `head_hash`) somewhere the database's operators
cannot write: a later chain that does not contain it was rewritten.

Exit status: 0 when the chain verifies (or the export is written), 1 when it is broken or the store cannot be
used, 2 on bad usage.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    from engine.store import Store


def verify(ctx: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Check the audit log's hash chain; exit 1 naming the first edited, deleted or reordered entry."""
    store = open_store_or_exit(url or settings_of(ctx).resolved_database_url)
    try:
        result = store.audit.verify()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    elif result.ok:
        typer.echo(f"ok: {result.checked} audit entries verified; head hash {result.head_hash}")
    else:
        typer.echo(
            f"BROKEN at audit entry {result.broken_id} ({result.problem}): {result.message}; "
            f"the {result.checked} entries before it verify",
            err=True,
        )
    if not result.ok:
        raise typer.Exit(1)


def export(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries from this time on (ISO date or time; UTC unless given)."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Write the audit log as NDJSON, oldest first, with the hashes (verifiable offline)."""
    start = _parse_since(since) if since is not None else None
    store = open_store_or_exit(url or settings_of(ctx).resolved_database_url)
    try:
        if out is None:
            count = _write(store, start, sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as stream:
                count = _write(store, start, stream)
            typer.echo(f"exported {count} audit entries to {out}", err=True)
    finally:
        store.close()


def _write(store: Store, start: datetime | None, stream: TextIO) -> int:
    """Stream the entries from `start` on to `stream`, one line each; returns how many."""
    from engine.store.audit_chain import export_line

    count = 0
    for entry in store.audit.entries(since=start):
        stream.write(export_line(entry) + "\n")
        count += 1
    stream.flush()
    return count


def _parse_since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since must be an ISO date or time like 2026-12-01 or 2026-12-01T10:00:00Z, not {text!r}", 2)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def register(app: typer.Typer) -> None:
    """Add `rayweave audit verify` and `rayweave audit export` to the `rayweave` app."""
    audit = typer.Typer(name="audit", help="The tamper-evident audit log.", no_args_is_help=True)
    audit.command("verify")(verify)
    audit.command("export")(export)
    app.add_typer(audit, name="audit")
