"""`rayweave keys`: mint, list and rotate API keys directly in the store, the operator's way back in.

```
rayweave keys create --admin [--user admin] [--name TEXT] [--expires-in 30d] [--url URL] [--json]
rayweave keys create --scope runs:read --scope runs:write --user alice [--json]
rayweave keys list [--user NAME] [--all] [--url URL] [--json]
rayweave keys rotate ID [--grace 10m] [--expires-in 90d] [--url URL] [--json]
```
It needs no server and no key: only access to the store (`RAYWEAVE_DATABASE_URL`, or the SQLite file under
`RAYWEAVE_HOME`), which is what an operator of the installation has and a tenant of the API has not. So when
every admin key is lost, revoked or expired, `rayweave keys create --admin` makes a new one. The secret is
printed once (with `--json`, in one JSON document on stdout); the store keeps only its hash. Each key made
or rotated here is written to the store's audit log, naming the operating-system user who ran the command.
Durations (`--expires-in`, `--grace`) are a number with an optional unit: `s`, `m`, `h`, `d` (`30d`, `90s`).

Exit status: 0 on success, 1 when the store cannot be used, 2 on bad usage.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.models import ApiKey

#: The user an admin key is made for unless `--user` names another (the server's first-start admin).
ADMIN_USER = "admin"
#: Seconds per duration unit of `--expires-in` and `--grace`.
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str, option: str) -> float:
    """Seconds of a duration like `30d`, `12h`, `10m`, `90s` or `45`; bad text exits 2 naming `option`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if match is None:
        fail(f"{option}: {text!r} is not a duration; write e.g. 30d, 12h, 10m, 90s or 45 (seconds)", 2)
    return float(match.group(1)) * _UNITS[match.group(2)]


ExpiresInOption = Annotated[
    str | None,
    typer.Option("--expires-in", help="The key stops working after this long, e.g. 30d, 12h, 10m."),
]


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
    expires_in: ExpiresInOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key in the store (no server needed); prints the secret once."""
    from serve.auth import check_scopes

    wanted = [*(scopes or []), *(["admin"] if admin else [])]
    if not wanted:
        fail("give --admin or at least one --scope (e.g. --scope runs:read)", 2)
    try:
        granted = check_scopes(wanted)
    except ValueError as exc:
        fail(f"--scope: {exc}", 2)
    username = user or (ADMIN_USER if admin else None)
    if not username:
        fail("name the key's user with --user (only --admin keys default to the user 'admin')", 2)
    expires_at = _expires_at(expires_in)
    store = open_store_or_exit(url or settings_of(ctx).resolved_database_url)
    try:
        key, secret, created_user = _mint(
            store, username, granted, name or "created by rayweave keys create", expires_at
        )
    finally:
        store.close()
    data = {
        "id": key.id,
        "prefix": key.prefix,
        "user": username,
        "user_created": created_user,
        "scopes": list(key.scopes),
        "name": key.name,
        "expires_at": _iso(key.expires_at),
        "key": secret,
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    until = f", expiring {_iso(key.expires_at)}" if key.expires_at else ""
    typer.echo(
        f"Created API key {key.prefix} for user {username!r} with scopes {', '.join(key.scopes)}{until}.\n"
        f"It is shown only now; keep it safe:\n  {secret}"
    )


def list_keys(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    include_revoked: Annotated[
        bool, typer.Option("--all", help="Also revoked keys (and rotated ones past their grace).")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys in the store (never their secrets): prefix, user, scopes, expiry and last use."""
    from engine.store import NotFoundError

    store = open_store_or_exit(url or settings_of(ctx).resolved_database_url)
    try:
        user_id = None
        if user is not None:
            try:
                user_id = store.users.get_by_username(user).id
            except NotFoundError:
                fail(f"--user: no user {user!r}")
        names = {u.id: u.username for u in store.users.list()}
        keys = store.api_keys.list(user_id=user_id, include_revoked=include_revoked)
    finally:
        store.close()
    rows = [_key_row(key, names.get(key.user_id, key.user_id)) for key in keys]
    if as_json:
        typer.echo(json.dumps({"items": rows}))
        return
    header = ("ID", "PREFIX", "USER", "NAME", "SCOPES", "EXPIRES", "REVOKED", "LAST USED")
    table = [header] + [
        (
            r["id"],
            r["prefix"],
            r["user"],
            r["name"],
            ",".join(r["scopes"]),
            r["expires_at"] or "-",
            r["revoked_at"] or "-",
            r["last_used_at"] or "never",
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def rotate(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The id of the key to rotate (see `rayweave keys list`).")],
    grace: Annotated[
        str,
        typer.Option(
            "--grace", help="How long the old key keeps working, e.g. 10m (default 0: revoked now)."
        ),
    ] = "0",
    expires_in: ExpiresInOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a key by a new secret of the same user, name and scopes; prints the new secret once."""
    from engine.store import InvalidApiKeyError, NotFoundError

    grace_s = parse_duration(grace, "--grace")
    expires_at = _expires_at(expires_in)
    store = open_store_or_exit(url or settings_of(ctx).resolved_database_url)
    try:
        try:
            old, new, secret = store.api_keys.rotate(
                key_id, grace_s=grace_s, expires_at=expires_at, keep_expiry=expires_at is None
            )
        except (InvalidApiKeyError, NotFoundError) as exc:
            fail(str(exc))
        store.audit.append(
            _operator("rotate"),
            "keys.rotate",
            resource_type="keys",
            resource_id=old.id,
            details={
                "via": "rayweave keys rotate",
                "new_key_id": new.id,
                "old_prefix": old.prefix,
                "new_prefix": new.prefix,
                "grace_s": grace_s,
                "old_revoked_at": _iso(old.revoked_at),
                "host": socket.gethostname(),
            },
        )
    finally:
        store.close()
    data = {
        "id": new.id,
        "prefix": new.prefix,
        "scopes": list(new.scopes),
        "name": new.name,
        "expires_at": _iso(new.expires_at),
        "key": secret,
        "rotated": {"id": old.id, "prefix": old.prefix, "revoked_at": _iso(old.revoked_at)},
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"Rotated API key {old.prefix}: it stops working at {_iso(old.revoked_at)}.\n"
        f"The new key {new.prefix} is shown only now; keep it safe:\n  {secret}"
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _expires_at(expires_in: str | None) -> datetime | None:
    """The expiry of `--expires-in` (from now), or None."""
    if expires_in is None:
        return None
    from engine.store.columns import utcnow

    seconds = parse_duration(expires_in, "--expires-in")
    if seconds <= 0:
        fail("--expires-in: give a positive duration, e.g. 30d", 2)
    return utcnow() + timedelta(seconds=seconds)


def _key_row(key: ApiKey, username: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "user": username,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "last_used_at": _iso(key.last_used_at),
    }


def _mint(
    store: Store, username: str, scopes: list[str], name: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str, bool]:
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
                fail(f"--user: {exc}", 2)
    if user.disabled:
        fail(f"user {username!r} is disabled; a key of a disabled user does not work: choose another --user")
    key, secret = store.api_keys.create(user.id, name=name, scopes=scopes, expires_at=expires_at)
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


def _operator(command: str = "create") -> str:
    """How the audit log names whoever ran the command: the operating-system user on this host."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container's arbitrary user)
        who = "unknown"
    return f"{who} (local: rayweave keys {command})"


def register(app: typer.Typer) -> None:
    """Add `rayweave keys create|list|rotate` to the `rayweave` app."""
    keys = typer.Typer(name="keys", help="API keys made directly in the store.", no_args_is_help=True)
    keys.command("create")(create)
    keys.command("list")(list_keys)
    keys.command("rotate")(rotate)
    app.add_typer(keys, name="keys")
