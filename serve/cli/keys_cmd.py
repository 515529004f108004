"""`rayweave keys create`: mint an API key directly in the store, the operator's way back in.

```
rayweave keys create --admin [--user admin] [--name TEXT] [--url URL] [--json]
rayweave keys create --scope runs:read --scope runs:write --user alice [--json]
```
It needs no server and no key: only access to the store (`RAYWEAVE_DATABASE_URL`, or the SQLite file under
`RAYWEAVE_HOME`), which is what an operator of the installation has and a tenant of the API has not. So when
every admin key is lost, revoked or expired, `rayweave keys create --admin` makes a new one. The secret is
printed once (with `--json`, in one JSON document on stdout); the store keeps only its hash. Each key made
here is written to the store's audit log, naming the operating-system user who ran the command.

Exit status: 0 on success, 1 when the store cannot be used, 2 on bad usage.
"""

from __future__ import annotations

import getpass
import json
import socket
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.models import ApiKey

#: The user an admin key is made for unless `--user` names another (the server's first-start admin).
ADMIN_USER = "admin"


def create(
    ctx: typer.Context,
    admin: Annotated[
        bool, typer.Option("--admin", help="Give the key the admin scope (every right).")
    ] = False,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope of the key (repeat for several), e.g. runs:read."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="The key's user, created if new (default: admin for --admin)."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key in the store (no server needed); prints the secret once."""
    from serve.auth import check_scopes

    wanted = [*(scopes or []), *(["admin"] if admin else [])]
    if not wanted:
        _fail("give --admin or at least one --scope (e.g. --scope runs:read)", 2)
    try:
        granted = check_scopes(wanted)
    except ValueError as exc:
        _fail(f"--scope: {exc}", 2)
    username = user or (ADMIN_USER if admin else None)
    if not username:
        _fail("name the key's user with --user (only --admin keys default to the user 'admin')", 2)
    store = _open_store(url or settings_of(ctx).resolved_database_url)
    try:
        key, secret, created_user = _mint(store, username, granted, name or "created by rayweave keys create")
    finally:
        store.close()
    data = {
        "id": key.id,
        "prefix": key.prefix,
        "user": username,
        "user_created": created_user,
        "scopes": list(key.scopes),
        "name": key.name,
        "key": secret,
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"Created API key {key.prefix} for user {username!r} with scopes {', '.join(key.scopes)}.\n"
        f"It is shown only now; keep it safe:\n  {secret}"
    )


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open_store(url: str) -> Store:
    """The installation's store (`--url`, else the settings'); a bad URL exits 2, an unreachable one 1."""
    from engine.store import MigrationError, backend_errors, open_store

    failures: tuple[type[Exception], ...] = (MigrationError, *backend_errors())
    try:
        return open_store(url)
    except (ValueError, ImportError) as exc:
        _fail(f"cannot use database URL: {exc}", 2)
    except failures as exc:
        _fail(f"cannot open the database: {exc}")


def _mint(store: Store, username: str, scopes: list[str], name: str) -> tuple[ApiKey, str, bool]:
    """The key made for `username` (created if new), its secret, and whether the user was created."""
    from engine.store import NotFoundError

    created = False
    try:
        user = store.users.get_by_username(username)
    except NotFoundError:
        try:
            user = store.users.create(username, is_admin="admin" in scopes)
            created = True
        except ValueError as exc:  # a reserved name (`oidc:...`), or created meanwhile
            try:
                user = store.users.get_by_username(username)
            except NotFoundError:
                _fail(f"--user: {exc}", 2)
    if user.disabled:
        _fail(f"user {username!r} is disabled; a key of a disabled user does not work: choose another --user")
    key, secret = store.api_keys.create(user.id, name=name, scopes=scopes)
    store.audit.append(
        _operator(),
        "keys.create",
        resource_type="keys",
        resource_id=key.id,
        details={
            "via": "rayweave keys create",
            "user": username,
            "user_created": created,
            "scopes": scopes,
            "host": socket.gethostname(),
        },
    )
    return key, secret, created


def _operator() -> str:
    """How the audit log names whoever ran the command: the operating-system user on this host."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container's arbitrary user)
        who = "unknown"
    return f"{who} (local: rayweave keys create)"


def register(app: typer.Typer) -> None:
    """Add `rayweave keys create` to the `rayweave` app."""
    keys = typer.Typer(name="keys", help="API keys made directly in the store.", no_args_is_help=True)
    keys.command("create")(create)
    app.add_typer(keys, name="keys")
