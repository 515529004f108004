"""Opening the installation's store from a command, and failing a command, the same way in every group.

A bad database URL exits with status 2 (a usage error), a database that cannot be opened or upgraded with 1,
each with one line on stderr saying which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from engine.store import SqlStore


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def open_store_or_exit(url: str) -> SqlStore:
    """The store at `url`, upgraded to the current schema; a bad URL exits 2, an unreachable database 1."""
    from engine.store import MigrationError, backend_errors, open_store

    failures: tuple[type[Exception], ...] = (MigrationError, *backend_errors())
    try:
        return open_store(url)
    except (ValueError, ImportError) as exc:
        fail(f"cannot use database URL: {exc}", 2)
    except failures as exc:
        fail(f"cannot open the database: {exc}")
