"""`rayweave secrets`: set, list, show and delete secrets, and rotate the master key, directly in the store.

```
rayweave secrets set NAME --user alice [--from-file F | --from-env VAR] [--description TEXT] [--url URL]
rayweave secrets list [--user NAME] [--url URL] [--json]
rayweave secrets show NAME --user alice [--url URL] [--json]
rayweave secrets delete NAME --user alice [--url URL]
rayweave secrets rotate-key [--url URL] [--json]
```
Like `rayweave keys`, it needs access to the store and to the master key (`RAYWEAVE_SECRETS_KEY_FILE`,
`RAYWEAVE_SECRETS_MASTER_KEY` or `RAYWEAVE_SECRETS_KMS`), not a server. A value is never taken from the command
line (it would stay in the shell's history and in `ps`): from a file, an environment variable, or standard
input. Nothing prints a value. `rotate-key` puts a fresh master key in front of the keyring file, re-encrypts
every secret under it (each with a new data key), then drops the old keys; interrupted, it is safe to run again.
With `RAYWEAVE_SECRETS_MASTER_KEY` (put the new key first) or a KMS it re-encrypts under the current key.
Every change is written to the audit log with the operating-system user who ran the command.

Exit status: 0 on success, 1 when the store or the master key cannot be used, 2 on bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import audit_change, fail, open_store_or_exit, os_actor, user_or_exit

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.secrets import KeyProvider, SecretsService
    from engine.store import Store

UserOption = Annotated[str, typer.Option("--user", help="Whose secret (a username).")]


def _user_id(store: Store, username: str) -> str:
    return user_or_exit(store, username).id


def _service(settings: Settings, store: Store, *, create: bool = False) -> SecretsService:
    from engine.secrets import MasterKeyError, SecretsService, key_provider

    try:
        return SecretsService(store, key_provider(settings, create=create))
    except MasterKeyError as exc:
        fail(str(exc))


def _audit(store: Store, action: str, target: str, **details: object) -> None:
    audit_change(store, action, "secrets", target, **details)


def _read_value(from_file: Path | None, from_env: str | None) -> str:
    if from_file is not None and from_env is not None:
        fail("give one of --from-file and --from-env (or the value on standard input)", 2)
    if from_file is not None:
        try:
            return from_file.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--from-file: cannot read {from_file} ({exc.__class__.__name__})", 2)
    if from_env is not None:
        if from_env not in os.environ:
            fail(f"--from-env: the environment variable {from_env} is not set", 2)
        return os.environ[from_env]
    if sys.stdin.isatty():
        fail("give the value with --from-file, --from-env or on standard input (never as an argument)", 2)
    return sys.stdin.read().rstrip("\n")


def set_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    user: UserOption,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from this file.")
    ] = None,
    from_env: Annotated[
        str | None, typer.Option("--from-env", help="Read the value from this environment variable.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="What it is for.")] = None,
    url: UrlOption = None,
) -> None:
    """Store a secret, or a new value of one (a new version)."""
    from engine.secrets import SecretError, check_name

    settings = settings_of(ctx)
    try:
        check_name(name)  # before reading a value: a bad name is the first thing to fix
    except SecretError as exc:
        fail(f"NAME: {exc}", 2)
    value = _read_value(from_file, from_env)
    if not value:
        fail("the value is empty", 2)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        owner = _user_id(store, user)
        try:
            info = _service(settings, store, create=True).set(
                owner, name, value, description=description, actor=os_actor()
            )
        except (SecretError, ValueError) as exc:
            fail(str(exc), 2)
        _audit(store, "secrets.set", f"{owner}/{name}", version=info.version)
    typer.echo(f"set secret {name} of {user} (version {info.version})")


def list_secrets(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's secrets.")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List secrets: names and metadata, never values."""
    from engine.secrets import SecretInfo

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        owner = _user_id(store, user) if user is not None else None
        infos = [SecretInfo.of(row) for row in store.secrets.list(owner=owner)]
    if as_json:
        typer.echo(json.dumps([info.as_dict() for info in infos]))
        return
    for info in infos:
        typer.echo(
            f"{info.owner}  {info.name}  v{info.version}  {info.updated_at:%Y-%m-%d %H:%M}  {info.description}"
        )


def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    user: UserOption,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a secret's metadata (never its value)."""
    from engine.secrets import SecretInfo
    from engine.store import NotFoundError

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        try:
            info = SecretInfo.of(store.secrets.get(_user_id(store, user), name))
        except NotFoundError as exc:
            fail(str(exc))
    typer.echo(json.dumps(info.as_dict(), indent=None if as_json else 2))


def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    user: UserOption,
    url: UrlOption = None,
) -> None:
    """Delete a secret."""
    from engine.store import NotFoundError

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        owner = _user_id(store, user)
        try:
            store.secrets.delete(owner, name)
        except NotFoundError as exc:
            fail(str(exc))
        _audit(store, "secrets.delete", f"{owner}/{name}")
    typer.echo(f"deleted secret {name} of {user}")


def rotate_key(ctx: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Re-encrypt every secret under a fresh master key (keyring file) or the current one (environment, KMS)."""
    from engine.secrets import Keyring, MasterKeyError, SecretsService, key_provider
    from engine.secrets.keys import key_file, write_keyring

    settings = settings_of(ctx)
    from_file = not settings.secrets_kms and settings.secrets_master_key is None
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        try:
            old = key_provider(settings, create=from_file)
            keys: KeyProvider
            if from_file:
                # The file's provider is a Keyring. The new key goes in front first, so that secrets sealed
                # under it are always readable, even if this is interrupted.
                keys = cast(Keyring, old).rotated()
                write_keyring(key_file(settings), keys)
            else:  # the environment's keyring or a KMS: reseal under its current key
                keys = old
            report = SecretsService(store, keys).rotate(keys)
        except MasterKeyError as exc:
            fail(str(exc))
        if from_file:
            write_keyring(key_file(settings), cast(Keyring, keys).current_only())
        _audit(store, "secrets.rotate-key", report.key_id, resealed=report.resealed)
    result = {"key_id": report.key_id, "resealed": report.resealed, "unchanged": report.unchanged}
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"master key {report.key_id}: re-encrypted {report.resealed} secret(s) under it")
    if not from_file:
        typer.echo("older keys may now be removed from RAYWEAVE_SECRETS_MASTER_KEY (or disabled in the KMS)")


def register(app: typer.Typer) -> None:
    """Add `rayweave secrets` to the `rayweave` app."""
    group = typer.Typer(help="Secrets: set, list, show, delete; rotate the master key.", no_args_is_help=True)
    group.command("set")(set_secret)
    group.command("list")(list_secrets)
    group.command("show")(show)
    group.command("delete")(delete)
    group.command("rotate-key")(rotate_key)
    app.add_typer(group, name="secrets")
