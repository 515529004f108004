"""Outbound webhooks (issue 19, ADR 021): subscribe a URL to run events, list and change subscriptions, see
their deliveries, redeliver one, send a test ping.

Scopes `webhooks:read` (list, show, deliveries) and `webhooks:write` (create, change, delete, redeliver, test).
A webhook belongs to the user who created it and carries the events of the runs that user may see (its own,
those of workflows shared with it, and for a tenant's owners and admins every run of the tenant). The owners
and admins of a tenant see and manage its users' webhooks; admin keys every webhook; anyone else gets 404. The
signing secret is in the answer of the creation only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from engine.store import NotFoundError as StoreNotFound
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND
from serve.api.v1.webhook_schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from serve.auth import Principal, require
from serve.deps import get_context
from serve.errors import NotFoundError, UnavailableError

if TYPE_CHECKING:
    from engine.store.models import WebhookSubscription
    from engine.webhooks.errors import WebhookInputError
    from engine.webhooks.service import WebhookService
    from serve.context import ServerContext

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=AUTH_ERRORS)

StatusQuery = Query(
    default=None, pattern="^(scheduled|delivered|dead)$", description="Only deliveries in this state."
)
LimitQuery = Query(default=100, ge=1, le=1000, description="At most this many, newest first.")


def _invalid(exc: WebhookInputError) -> RequestValidationError:
    """A 422 naming the field, shaped like the schema's own refusals."""
    message = str(exc).removeprefix(f"{exc.field}: ")
    return RequestValidationError([{"type": "value_error", "loc": ("body", exc.field), "msg": message}])


def _service(ctx: ServerContext, *, create_key: bool = False) -> WebhookService:
    from engine.secrets import MasterKeyError, key_provider
    from engine.webhooks.service import WebhookService

    try:
        keys = key_provider(ctx.settings, create=create_key)
    except MasterKeyError as exc:
        raise UnavailableError(
            f"the secrets store's master key (which seals webhook signing secrets) is unavailable: {exc}; the "
            "operator must configure it"
        ) from None
    return WebhookService(ctx.store, keys, allow=ctx.settings.webhook_allow)


def _may_manage(principal: Principal, row: WebhookSubscription) -> bool:
    if principal.is_admin or row.owner == principal.user_id:
        return True
    return principal.sees_tenant and row.tenant_id == principal.tenant_id


def _owned(ctx: ServerContext, principal: Principal, webhook_id: str) -> WebhookSubscription:
    """The webhook if the principal may see it; 404 otherwise, as for one that does not exist."""
    try:
        row = ctx.store.webhooks.get(webhook_id)
    except StoreNotFound:
        row = None
    if row is None or not _may_manage(principal, row):
        raise NotFoundError(f"webhook {webhook_id!r} does not exist; GET /v1/webhooks lists yours")
    return row


def _check_workflow(ctx: ServerContext, principal: Principal, workflow_id: str | None) -> None:
    from serve.policy_access import visible_workflow

    if workflow_id is None:
        return
    try:
        visible_workflow(ctx.store, principal, workflow_id)
    except NotFoundError:
        from engine.webhooks.errors import WebhookInputError

        raise _invalid(
            WebhookInputError(
                "workflow_id", f"workflow {workflow_id!r} does not exist or is not visible to you"
            )
        ) from None


def _out(row: WebhookSubscription) -> WebhookOut:
    from engine.webhooks.service import subscription_json

    return WebhookOut(**subscription_json(row))


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "webhooks", None)
    if worker is not None:
        worker.wake()


@router.post(
    "", status_code=201, response_model=WebhookCreated, summary="Create a webhook", responses=INVALID
)
def create_webhook(
    body: WebhookCreate, request: Request, principal: Principal = Depends(require("webhooks:write"))
) -> WebhookCreated:
    """Subscribe `url` to `event_types` of the runs you may see (of `workflow_id` only, when given). The answer
    holds the signing secret, shown this once."""
    from engine.webhooks.errors import WebhookInputError
    from engine.webhooks.service import subscription_json

    ctx = get_context(request)
    _check_workflow(ctx, principal, body.workflow_id)
    try:
        created = _service(ctx, create_key=True).create(
            owner=principal.user_id,
            tenant_id=principal.tenant_id,
            url=body.url,
            event_types=body.event_types,
            workflow_id=body.workflow_id,
            description=body.description,
            enabled=body.enabled,
            actor=principal.actor,
        )
    except WebhookInputError as exc:
        raise _invalid(exc) from None
    request.state.audit_target = created.subscription.id
    return WebhookCreated(**subscription_json(created.subscription), secret=created.secret)


@router.get("", response_model=WebhookList, summary="List webhooks")
def list_webhooks(request: Request, principal: Principal = Depends(require("webhooks:read"))) -> WebhookList:
    """Your webhooks (a tenant's owners and admins: the tenant's; admin keys: all), oldest first."""
    ctx = get_context(request)
    whole = principal.is_admin or principal.sees_tenant
    rows = ctx.store.webhooks.list(owner=None if whole else principal.user_id)
    return WebhookList(items=[_out(row) for row in rows if _may_manage(principal, row)])


@router.get("/{webhook_id}", response_model=WebhookOut, summary="Show a webhook", responses=NOT_FOUND)
def get_webhook(
    webhook_id: str, request: Request, principal: Principal = Depends(require("webhooks:read"))
) -> WebhookOut:
    """One webhook (never its secret)."""
    return _out(_owned(get_context(request), principal, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Change a webhook",
    responses={**NOT_FOUND, **INVALID},
)
def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    request: Request,
    principal: Principal = Depends(require("webhooks:write")),
) -> WebhookOut:
    """Enable or disable a webhook, or change its URL, event types, workflow filter or description."""
    from engine.webhooks.errors import WebhookInputError

    ctx = get_context(request)
    _owned(ctx, principal, webhook_id)
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    for name in ("url", "event_types", "description", "enabled"):
        if name in changes and changes[name] is None:
            raise _invalid(WebhookInputError(name, "may not be null; leave it out to keep it"))
    _check_workflow(ctx, principal, changes.get("workflow_id"))
    try:
        row = _service(ctx).update(webhook_id, changes)
    except WebhookInputError as exc:
        raise _invalid(exc) from None
    request.state.audit_target = webhook_id
    return _out(row)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook", responses=NOT_FOUND)
def delete_webhook(
    webhook_id: str, request: Request, principal: Principal = Depends(require("webhooks:write"))
) -> Response:
    """Remove a webhook and its deliveries (attempts in flight may still arrive once)."""
    ctx = get_context(request)
    _owned(ctx, principal, webhook_id)
    try:
        ctx.store.webhooks.delete(webhook_id)
    except StoreNotFound:
        raise NotFoundError(f"webhook {webhook_id!r} does not exist") from None
    request.state.audit_target = webhook_id
    return Response(status_code=204)


def _delivery_out(row: Any) -> DeliveryOut:
    from engine.webhooks.service import delivery_json

    return DeliveryOut(**delivery_json(row))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="List a webhook's deliveries",
    responses=NOT_FOUND,
)
def list_deliveries(
    webhook_id: str,
    request: Request,
    status: str | None = StatusQuery,
    limit: int = LimitQuery,
    principal: Principal = Depends(require("webhooks:read")),
) -> DeliveryList:
    """Deliveries and their attempts, newest first; `status=dead` lists the dead letters."""
    from engine.store.models import DeliveryStatus

    ctx = get_context(request)
    _owned(ctx, principal, webhook_id)
    wanted = DeliveryStatus(status) if status is not None else None
    rows = ctx.store.webhooks.deliveries(webhook_id, status=wanted, limit=limit)
    return DeliveryList(items=[_delivery_out(row) for row in rows])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    summary="Deliver again",
    responses=NOT_FOUND,
)
def redeliver(
    webhook_id: str,
    delivery_id: str,
    request: Request,
    principal: Principal = Depends(require("webhooks:write")),
) -> DeliveryOut:
    """Schedule a delivery (a dead letter, or one delivered already) again now, with a fresh count of
    attempts; the same event, the same `webhook-id`."""
    ctx = get_context(request)
    _owned(ctx, principal, webhook_id)
    try:
        row = ctx.store.webhooks.redeliver(webhook_id, delivery_id)
    except StoreNotFound as exc:
        raise NotFoundError(str(exc.args[0])) from None
    request.state.audit_target = f"{webhook_id}/{delivery_id}"
    _wake(request)
    return _delivery_out(row)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a test ping",
    responses=NOT_FOUND,
)
def test_webhook(
    webhook_id: str, request: Request, principal: Principal = Depends(require("webhooks:write"))
) -> DeliveryOut:
    """Schedule a ping (CloudEvent type `io.rayweave.webhook.ping`) to the webhook now; its outcome shows in
    the deliveries. A disabled webhook's ping waits until it is enabled."""
    from engine.webhooks.service import ping_delivery

    ctx = get_context(request)
    row = _owned(ctx, principal, webhook_id)
    ping = ping_delivery(row)
    ctx.store.webhooks.enqueue(webhook_id, [ping])
    request.state.audit_target = webhook_id
    _wake(request)
    return _delivery_out(ctx.store.webhooks.get_delivery(webhook_id, str(ping.id)))
