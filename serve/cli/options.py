"""Options several command groups share, defined once so that their help reads the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="Database URL (default: RAYWEAVE_DATABASE_URL, or SQLite under RAYWEAVE_HOME)."
    ),
]
