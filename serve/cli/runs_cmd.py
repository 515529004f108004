"""Commands of `rayweave` (module runs_cmd); see register()."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `rayweave` app."""
    del app
