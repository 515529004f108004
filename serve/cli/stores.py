"""Opening the installation's store from a command, and failing a command, the same way in every group.

A bad database URL exits with status 2 (a usage error), a database that cannot be opened or upgraded with 1,
each with one line on stderr saying which.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.models import User


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def open_store_or_exit(url: str, workflows_dir: Path | None = None) -> Store:
    """The store at `url`, upgraded to the current schema (workflows as files in `workflows_dir` when given);
    a bad URL exits 2, an unreachable database (or a Redis server that would lose writes) 1."""
    from engine.store import DurabilityError, MigrationError, backend_errors, open_store

    failures: tuple[type[Exception], ...] = (MigrationError, DurabilityError, *backend_errors())
    try:
        return open_store(url, workflows_dir=workflows_dir)
    except (ValueError, ImportError) as exc:
        fail(f"cannot use database URL: {exc}", 2)
    except failures as exc:
        fail(f"cannot open the database: {exc}")


def os_actor() -> str:
    """Who ran this command, as the audit log records a change made from the command line."""
    return f"os:{getpass.getuser()}@{socket.gethostname()}"


def audit_change(store: Store, action: str, resource_type: str, resource_id: str, **details: object) -> None:
    """Append a change made by this command to the audit log (`via: rayweave ACTION`, the OS user as actor)."""
    store.audit.append(
        os_actor(),
        action,
        resource_type=resource_type,
        resource_id=resource_id,
        details={"via": f"rayweave {action}", **details},
    )


def user_or_exit(store: Store, username: str, option: str = "--user") -> User:
    """The user named `username`; exits 2 naming `option` when there is none."""
    from engine.store import NotFoundError

    try:
        return store.users.get_by_username(username)
    except NotFoundError:
        fail(f"{option}: no user {username!r}; `rayweave users list` lists them", 2)
