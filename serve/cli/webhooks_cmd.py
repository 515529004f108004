"""`rayweave webhooks`: create, list and delete outbound webhooks, list their deliveries, redeliver one, directly
in the store.

```
rayweave webhooks create TARGET_URL --user alice --event run.failed [--event ...] [--workflow ID]
                         [--description TEXT] [--disabled] [--url DB_URL] [--json]
rayweave webhooks list [--user NAME] [--url DB_URL] [--json]
rayweave webhooks delete WEBHOOK_ID [--url DB_URL]
rayweave webhooks deliveries WEBHOOK_ID [--status dead] [--limit N] [--url DB_URL] [--json]
rayweave webhooks redeliver WEBHOOK_ID DELIVERY_ID [--url DB_URL]
```
Like `rayweave secrets`, it needs access to the store and to the secrets master key (which seals the signing
secret), not a server; the API server's delivery worker sends what is scheduled. `create` prints the signing
secret once. The target URL is checked as the API checks it (`RAYWEAVE_WEBHOOK_ALLOW` for internal addresses).
Every change is written to the audit log with the operating-system user who ran the command.

Exit status: 0 on success, 1 when the store or the master key cannot be used or the webhook does not exist, 2 on
bad usage.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.stores import audit_change, fail, open_store_or_exit, os_actor, user_or_exit

if TYPE_CHECKING:
    from engine.store import Store

WebhookArg = Annotated[str, typer.Argument(help="The webhook's id (see `rayweave webhooks list`).")]


def _audit(store: Store, action: str, target: str, **details: object) -> None:
    audit_change(store, action, "webhook", target, **details)


def create(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Where deliveries are POSTed (http or https).")],
    user: Annotated[
        str, typer.Option("--user", help="Whose webhook (a username): it sees that user's runs.")
    ],
    events: Annotated[
        list[str], typer.Option("--event", help="An event type to deliver (repeat the option for more).")
    ],
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only runs of this workflow id.")] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a webhook; prints its signing secret, which is never shown again."""
    from engine.secrets import MasterKeyError, key_provider
    from engine.store import NotFoundError
    from engine.webhooks.errors import WebhookInputError
    from engine.webhooks.service import WebhookService, subscription_json

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        owner = user_or_exit(store, user)
        if workflow is not None:
            try:
                store.workflows.get(workflow)  # type: ignore[arg-type]
            except NotFoundError:
                fail(f"--workflow: workflow {workflow!r} does not exist", 2)
        try:
            service = WebhookService(store, key_provider(settings, create=True), allow=settings.webhook_allow)
            created = service.create(
                owner=owner.id,
                tenant_id=owner.tenant_id,
                url=target,
                event_types=events,
                workflow_id=workflow,
                description=description,
                enabled=not disabled,
                actor=os_actor(),
            )
        except WebhookInputError as exc:
            option = {"url": "TARGET_URL", "event_types": "--event", "description": "--description"}
            fail(f"{option.get(exc.field, exc.field)}: {str(exc).removeprefix(exc.field + ': ')}", 2)
        except MasterKeyError as exc:
            fail(str(exc))
        _audit(store, "webhooks.create", created.subscription.id, url=target)
    shown = {**subscription_json(created.subscription), "secret": created.secret}
    if as_json:
        typer.echo(json.dumps(shown))
        return
    typer.echo(f"created webhook {created.subscription.id} -> {target}")
    typer.echo(f"signing secret (shown once; keep it with the receiver): {created.secret}")


def list_webhooks(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's webhooks.")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List webhooks (never their secrets)."""
    from engine.webhooks.service import subscription_json

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        owner = None
        if user is not None:
            owner = user_or_exit(store, user).id
        rows = [subscription_json(row) for row in store.webhooks.list(owner=owner)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        scope = f"  workflow {row['workflow_id']}" if row["workflow_id"] else ""
        typer.echo(f"{row['id']}  {state}  {row['url']}  {','.join(row['event_types'])}{scope}")


def delete(ctx: typer.Context, webhook: WebhookArg, url: UrlOption = None) -> None:
    """Delete a webhook and its deliveries."""
    from engine.store import NotFoundError

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        try:
            store.webhooks.delete(webhook)
        except NotFoundError as exc:
            fail(str(exc.args[0]))
        _audit(store, "webhooks.delete", webhook)
    typer.echo(f"deleted webhook {webhook}")


def deliveries(
    ctx: typer.Context,
    webhook: WebhookArg,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only deliveries in this state: scheduled, delivered, dead."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a webhook's deliveries, newest first (`--status dead`: its dead letters)."""
    from engine.store import NotFoundError
    from engine.store.models import DeliveryStatus
    from engine.webhooks.service import delivery_json

    try:
        wanted = DeliveryStatus(status) if status is not None else None
    except ValueError:
        fail(f"--status: {status!r} is not one of {', '.join(s.value for s in DeliveryStatus)}", 2)
    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        try:
            store.webhooks.get(webhook)
        except NotFoundError as exc:
            fail(str(exc.args[0]))
        rows = [delivery_json(row) for row in store.webhooks.deliveries(webhook, status=wanted, limit=limit)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        code = row["last_status_code"] if row["last_status_code"] is not None else "-"
        typer.echo(
            f"{row['id']}  {row['status']}  {row['event_type']}  attempts {row['attempts']}  last {code}"
            f"  {row['last_error']}".rstrip()
        )


def redeliver(
    ctx: typer.Context,
    webhook: WebhookArg,
    delivery: Annotated[str, typer.Argument(help="The delivery's id (see `rayweave webhooks deliveries`).")],
    url: UrlOption = None,
) -> None:
    """Schedule a delivery (e.g. a dead letter) again now; a running API server sends it."""
    from engine.store import NotFoundError

    settings = settings_of(ctx)
    with open_store_or_exit(url or settings.resolved_database_url) as store:
        try:
            store.webhooks.redeliver(webhook, delivery)
        except NotFoundError as exc:
            fail(str(exc.args[0]))
        _audit(store, "webhooks.redeliver", f"{webhook}/{delivery}")
    typer.echo(f"scheduled delivery {delivery} of webhook {webhook} again")


def register(app: typer.Typer) -> None:
    """Add `rayweave webhooks` to the `rayweave` app."""
    group = typer.Typer(
        help="Outbound webhooks: create, list, delete; deliveries and redelivery.", no_args_is_help=True
    )
    group.command("create")(create)
    group.command("list")(list_webhooks)
    group.command("delete")(delete)
    group.command("deliveries")(deliveries)
    group.command("redeliver")(redeliver)
    app.add_typer(group, name="webhooks")
