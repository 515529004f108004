"""Secrets: create, set a new value, list and show (names and metadata only), delete.

Scopes `secrets:read` (list, show) and `secrets:write` (create, set, delete). Each user has their own secrets;
admins may name another `owner`. Values go in and never come out: no route returns one, and problems never
echo one. Workflow nodes take a secret by reference, `{"secret": "name"}`, resolved inside the worker at run
time (see docs/guides/secrets.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from engine.secrets import MasterKeyError, SecretError, SecretNameError, SecretsService, key_provider
from engine.store import NotFoundError as StoreNotFound
from serve.api.v1.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    Problem,
    SecretCreate,
    SecretList,
    SecretOut,
    SecretUpdate,
)
from serve.auth import Principal, require
from serve.deps import get_context
from serve.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnavailableError

if TYPE_CHECKING:
    from engine.secrets import SecretInfo
    from serve.context import ServerContext

router = APIRouter(prefix="/secrets", tags=["secrets"], responses=AUTH_ERRORS)

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "A secret of that name exists; PUT sets a new value."}
}
SecretName = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$",
        description="The secret's name: a letter, then up to 127 letters, digits, '_', '-' or '.'.",
    ),
]
OwnerQuery = Query(
    default=None, max_length=200, description="Whose secrets (admins only); default: the caller's own."
)


def _service(ctx: ServerContext, *, create_key: bool = False) -> SecretsService:
    try:
        return SecretsService(ctx.store, key_provider(ctx.settings, create=create_key))
    except MasterKeyError as exc:
        raise UnavailableError(
            f"the secrets store's master key is unavailable: {exc}; the operator must configure it"
        ) from None


def _owner(principal: Principal, owner: str | None) -> str:
    if owner is None or owner == principal.user_id:
        return principal.user_id
    if not principal.is_admin:
        raise ForbiddenError("only admin keys may name another owner's secrets; drop `owner`")
    return owner


def _out(info: SecretInfo) -> SecretOut:
    return SecretOut(**info.as_dict())


def _store(
    request: Request,
    principal: Principal,
    owner: str | None,
    name: str,
    value: str,
    description: str | None,
    *,
    create_only: bool,
) -> SecretOut:
    """Seal `value` as secret `name` of the owner the caller may name (a new version when it exists, unless
    `create_only`: then 409), audit its target, and return its metadata; a bad name or value is 400."""
    ctx = get_context(request)
    who = _owner(principal, owner)
    service = _service(ctx, create_key=True)
    if create_only:
        try:
            service.info(who, name)
        except StoreNotFound:
            pass
        else:
            raise ConflictError(f"secret {name!r} exists; set a new value with PUT /v1/secrets/{name}")
    try:
        info = service.set(who, name, value, description=description, actor=principal.actor)
    except (SecretNameError, ValueError) as exc:
        raise BadRequestError(str(exc)) from None
    request.state.audit_target = f"{who}/{name}"
    return _out(info)


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"secret {name!r} does not exist; create it with POST /v1/secrets")


@router.post(
    "",
    status_code=201,
    response_model=SecretOut,
    summary="Create a secret",
    responses={**INVALID, **CONFLICT},
)
def create_secret(
    body: SecretCreate,
    request: Request,
    owner: str | None = OwnerQuery,
    principal: Principal = Depends(require("secrets:write")),
) -> SecretOut:
    """Store a new secret (sealed with a data key of its own under the master key). 409 if the name exists."""
    return _store(request, principal, owner, body.name, body.value, body.description, create_only=True)


@router.put(
    "/{name}", response_model=SecretOut, summary="Set a secret's value", responses={**INVALID, **NOT_FOUND}
)
def set_secret(
    name: SecretName,
    body: SecretUpdate,
    request: Request,
    owner: str | None = OwnerQuery,
    principal: Principal = Depends(require("secrets:write")),
) -> SecretOut:
    """Set a new value (a new version) of a secret, creating it if it does not exist."""
    return _store(request, principal, owner, name, body.value, body.description, create_only=False)


@router.get("", response_model=SecretList, summary="List secrets (names and metadata)")
def list_secrets(
    request: Request,
    owner: str | None = OwnerQuery,
    principal: Principal = Depends(require("secrets:read")),
) -> SecretList:
    """Your secrets (admins: another owner's with `owner`), by name; never a value."""
    ctx = get_context(request)
    who = _owner(principal, owner)
    rows = ctx.store.secrets.list(owner=who)
    from engine.secrets import SecretInfo

    return SecretList(items=[_out(SecretInfo.of(row)) for row in rows])


@router.get("/{name}", response_model=SecretOut, summary="Show a secret's metadata", responses=NOT_FOUND)
def get_secret(
    name: SecretName,
    request: Request,
    owner: str | None = OwnerQuery,
    principal: Principal = Depends(require("secrets:read")),
) -> SecretOut:
    """A secret's name, description, version and times; never its value."""
    ctx = get_context(request)
    who = _owner(principal, owner)
    from engine.secrets import SecretInfo

    try:
        return _out(SecretInfo.of(ctx.store.secrets.get(who, name)))
    except StoreNotFound:
        raise _not_found(name) from None


@router.delete("/{name}", status_code=204, summary="Delete a secret", responses=NOT_FOUND)
def delete_secret(
    name: SecretName,
    request: Request,
    owner: str | None = OwnerQuery,
    principal: Principal = Depends(require("secrets:write")),
) -> Response:
    """Remove a secret. Runs that reference it fail at their next resolution with a clear error."""
    ctx = get_context(request)
    who = _owner(principal, owner)
    try:
        ctx.store.secrets.delete(who, name)
    except StoreNotFound:
        raise _not_found(name) from None
    except SecretError as exc:  # pragma: no cover - defensive: store errors carry no value
        raise BadRequestError(str(exc)) from None
    request.state.audit_target = f"{who}/{name}"
    return Response(status_code=204)
