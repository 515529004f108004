"""`rayweave users` and `rayweave shares`: the users of a tenant and their roles, and who a workflow is shared with.

```
rayweave users create NAME [--role viewer] [--tenant T] [--email E] [--key] [--url URL | --server URL] [--json]
rayweave users list [--tenant T] [--url URL | --server URL] [--json]
rayweave users set-role NAME ROLE [--url URL | --server URL] [--json]
rayweave users disable NAME | enable NAME [--url URL | --server URL]
rayweave shares list WORKFLOW_ID [--url URL | --server URL] [--json]
rayweave shares set WORKFLOW_ID [--user NAME:ROLE ...] [--tenant-role ROLE] [--url URL | --server URL] [--json]
```
Like `rayweave keys`, each works directly on the store (`--url`, default `RAYWEAVE_DATABASE_URL` or the SQLite file
under `RAYWEAVE_HOME`: the operator's way, audited with the operating-system user) or, with `--server URL`
(or `RAYWEAVE_SERVER`) and an API key, through the server's `/v1/users` and `/v1/workflows/{id}/shares` with the
caller's own rights. Roles: owner, admin, member, editor, runner, viewer (`serve/policy.toml`); a tenant always
keeps an enabled owner. `shares set` replaces every share of the workflow (no option: stop sharing it).

Exit status: 0 on success, 1 when the store or server refuses or cannot be used, 2 on bad usage.
"""

from __future__ import annotations

import getpass
import json
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.remote import ApiKeyOption, ServerOption, connect, talking_to
from serve.cli.stores import fail, open_store_or_exit

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.models import User

_ROLES_HELP = "owner, admin, member, editor, runner or viewer"


def _operator(command: str) -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"{who} (local: rayweave {command})"


def _audit(store: Store, command: str, action: str, target: str, **details: Any) -> None:
    store.audit.append(
        _operator(command),
        action,
        resource_type=action.split(".", 1)[0],
        resource_id=target,
        details={"via": f"rayweave {command}", "host": socket.gethostname(), **details},
    )


def _row(user: Any) -> dict[str, Any]:
    fields: dict[str, Any] = user if isinstance(user, dict) else vars(user)

    def get(name: str) -> Any:
        return fields.get(name)

    created: Any = get("created_at")
    return {
        "id": get("id"),
        "username": get("username"),
        "tenant": get("tenant_id"),
        "role": get("role"),
        "disabled": bool(get("disabled")),
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
    }


def _print_users(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"items": rows}))
        return
    header = ("USERNAME", "TENANT", "ROLE", "DISABLED", "ID")
    table = [header] + [
        (r["username"], r["tenant"], r["role"], "yes" if r["disabled"] else "no", r["id"]) for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _local_user(store: Store, name: str) -> User:
    from engine.store import NotFoundError

    try:
        return store.users.get_by_username(name)
    except NotFoundError:
        fail(f"no user {name!r}; `rayweave users list` lists them")


def _check_role(role: str) -> str:
    from engine.store.roles import ROLES

    if role not in ROLES:
        fail(f"role {role!r}: roles are {', '.join(ROLES)}", 2)
    return role


def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    role: Annotated[str, typer.Option("--role", help=f"Its role: {_ROLES_HELP}.")] = "viewer",
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Its tenant's name, created if new (default: the default one)."),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Its e-mail address.")] = None,
    key: Annotated[bool, typer.Option("--key", help="Also create its first API key (printed once).")] = False,
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create (invite) a user at a role; with --key, also its first API key."""
    _check_role(role)
    secret = None
    if server:
        body: dict[str, Any] = {"username": username, "role": role, "key": key}
        if tenant is not None:
            body["tenant"] = tenant
        if email is not None:
            body["email"] = email
        with talking_to(server), connect(server, api_key) as client:
            data = client.post("/v1/users", json=body)
        row, secret = _row(data), data.get("key")
    else:
        from serve.auth import SCOPES

        with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
            tenant_id = store.tenants.ensure(tenant).id if tenant else None
            try:
                user = store.users.create(username, email=email, tenant_id=tenant_id, role=role)
            except ValueError as exc:
                fail(str(exc))
            _audit(store, "users create", "users.create", user.id, username=username, role=role)
            if key:
                record, secret = store.api_keys.create(
                    user.id,
                    name="first key (rayweave users create)",
                    scopes=[s for s in SCOPES if s != "admin"],
                )
                _audit(store, "users create", "keys.create", record.id, user=username)
            row = _row(user)
    if as_json:
        typer.echo(json.dumps({**row, "key": secret}))
        return
    typer.echo(f"Created user {row['username']!r} ({row['role']} of tenant {row['tenant']}).")
    if secret:
        typer.echo(f"Its API key is shown only now; keep it safe:\n  {secret}")


def list_users(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's users.")] = None,
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List users with their tenant and role."""
    if server:
        with talking_to(server), connect(server, api_key) as client:
            items = client.get("/v1/users", params={"tenant": tenant} if tenant else None)["items"]
        rows = [_row(u) for u in items]
    else:
        from engine.store import NotFoundError

        with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
            tenant_id = None
            if tenant is not None:
                try:
                    tenant_id = store.tenants.get_by_name(tenant).id
                except NotFoundError:
                    fail(f"--tenant: no tenant {tenant!r}")
            rows = [_row(u) for u in store.users.list(tenant_id=tenant_id)]
    _print_users(rows, as_json)


def set_role(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Argument(help=f"Its new role: {_ROLES_HELP}.")],
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user's role (never the tenant's last enabled owner); audited with the old and new role."""
    from engine.store.roles import LastOwnerError

    _check_role(role)
    if server:
        with talking_to(server), connect(server, api_key) as client:
            data = client.request("PUT", f"/v1/users/{username}/role", json={"role": role})
        row, previous = _row(data), data["previous_role"]
    else:
        with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
            user = _local_user(store, username)
            try:
                changed, previous = store.users.set_role(user.id, role)
            except LastOwnerError as exc:
                fail(str(exc))
            _audit(
                store,
                "users set-role",
                "users.set_role",
                user.id,
                username=username,
                **{"from": previous, "to": role},
            )
            row = _row(changed)
    if as_json:
        typer.echo(json.dumps({**row, "previous_role": previous}))
        return
    typer.echo(f"User {username!r} is now {role} (was {previous}).")


def _set_disabled(
    ctx: typer.Context,
    username: str,
    disabled: bool,
    url: str | None,
    server: str | None,
    api_key: str | None,
) -> None:
    from engine.store.roles import LastOwnerError

    verb = "disable" if disabled else "enable"
    if server:
        with talking_to(server), connect(server, api_key) as client:
            client.post(f"/v1/users/{username}/{verb}")
    else:
        with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
            user = _local_user(store, username)
            try:
                store.users.set_disabled(user.id, disabled)
            except LastOwnerError as exc:
                fail(str(exc))
            _audit(store, f"users {verb}", f"users.{verb}", user.id, username=username)
    typer.echo(f"User {username!r} is {verb}d.")


def disable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user.")],
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Disable a user: its keys stop working (never the tenant's last owner or the last admin)."""
    _set_disabled(ctx, username, True, url, server, api_key)


def enable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user.")],
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Enable a disabled user again."""
    _set_disabled(ctx, username, False, url, server, api_key)


def _print_shares(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
        return
    if not data["items"]:
        typer.echo(f"Workflow {data['workflow_id']} is not shared.")
    for item in data["items"]:
        who = f"user {item['user']}" if item.get("user") else f"tenant {item['tenant']} (everyone in it)"
        typer.echo(f"{who}: {item['role']}")


def _local_shares(store: Store, workflow_id: str) -> dict[str, Any]:
    items = []
    for share in store.shares.list(workflow_id):
        if share.subject_type == "user":
            items.append({"user": store.users.get(share.subject_id).username, "role": share.role})
        else:
            items.append({"tenant": share.subject_id, "role": share.role})
    return {"workflow_id": workflow_id, "items": items}


def list_shares(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow's id.")],
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who a workflow is shared with, and at which role."""
    if server:
        with talking_to(server), connect(server, api_key) as client:
            data = client.get(f"/v1/workflows/{workflow_id}/shares")
    else:
        with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
            data = _local_shares(store, workflow_id)
    _print_shares(data, as_json)


def set_shares(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow's id.")],
    users: Annotated[
        list[str] | None,
        typer.Option(
            "--user", help="NAME:ROLE, a user of the workflow's tenant (repeat); ROLE viewer|runner|editor."
        ),
    ] = None,
    tenant_role: Annotated[
        str | None, typer.Option("--tenant-role", help="Share with the whole tenant at this role.")
    ] = None,
    url: UrlOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace every share of a workflow (with no --user and no --tenant-role: stop sharing it)."""
    from engine.store.roles import SHARE_ROLES

    items: list[dict[str, Any]] = []
    for text in users or []:
        name, _, role = text.rpartition(":")
        if not name or role not in SHARE_ROLES:
            fail(f"--user {text!r}: write NAME:ROLE with ROLE one of {', '.join(SHARE_ROLES)}", 2)
        items.append({"user": name, "role": role})
    if tenant_role is not None:
        if tenant_role not in SHARE_ROLES:
            fail(f"--tenant-role: one of {', '.join(SHARE_ROLES)}", 2)
        items.append({"tenant": True, "role": tenant_role})
    if server:
        with talking_to(server), connect(server, api_key) as client:
            data = client.request("PUT", f"/v1/workflows/{workflow_id}/shares", json={"items": items})
    else:
        data = _set_local_shares(ctx, workflow_id, items, url)
    _print_shares(data, as_json)


def _set_local_shares(
    ctx: typer.Context, workflow_id: str, items: list[dict[str, Any]], url: str | None
) -> dict[str, Any]:
    from engine.store import NotFoundError
    from engine.store.shares import TENANT, USER, Share

    with open_store_or_exit(url or settings_of(ctx).resolved_database_url) as store:
        try:
            workflow = store.workflows.get(workflow_id)  # type: ignore[arg-type]
            tenant_id = store.users.get(workflow.owner).tenant_id
        except NotFoundError as exc:
            fail(str(exc))
        shares = []
        for item in items:
            if "tenant" in item:
                shares.append(Share(workflow_id, TENANT, tenant_id, item["role"]))
                continue
            user = _local_user(store, item["user"])
            if user.tenant_id != tenant_id:
                fail(
                    f"--user: {item['user']!r} is not in the workflow's tenant {tenant_id!r}; shares stay in a tenant"
                )
            shares.append(Share(workflow_id, USER, user.id, item["role"]))
        store.shares.replace(workflow_id, shares, actor=_operator("shares set"))
        _audit(
            store,
            "shares set",
            "workflows.share",
            workflow_id,
            shares=[{"type": s.subject_type, "id": s.subject_id, "role": s.role} for s in shares],
        )
        return _local_shares(store, workflow_id)


def register(app: typer.Typer) -> None:
    """Add `rayweave users create|list|set-role|disable|enable` and `rayweave shares list|set`."""
    users = typer.Typer(name="users", help="Users of a tenant and their roles.", no_args_is_help=True)
    users.command("create")(create)
    users.command("list")(list_users)
    users.command("set-role")(set_role)
    users.command("disable")(disable)
    users.command("enable")(enable)
    app.add_typer(users, name="users")
    shares = typer.Typer(name="shares", help="Who a workflow is shared with.", no_args_is_help=True)
    shares.command("list")(list_shares)
    shares.command("set")(set_shares)
    app.add_typer(shares, name="shares")
