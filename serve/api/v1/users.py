"""Users of a tenant: create (invite, optionally with a first API key), list, show, change role, disable and
enable. Scope `users:admin` (a tenant's owners and admins, `serve/policy.toml`); admin keys manage every tenant.

A caller sees only the users of its own tenant (others are 404). It may give, and take away, only the roles its
own role `assigns` (an admin cannot make or unmake owners). The last enabled owner of a tenant, and the user
holding the installation's last admin keys, cannot be demoted or disabled (409). Every change is audited, role
changes with the old and new role.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.store import NotFoundError as StoreNotFound
from engine.store import ReservedUsernameError, Store
from engine.store.roles import LastOwnerError
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND, Problem, RequestModel
from serve.auth import SCOPES, Principal, require
from serve.deps import get_context, get_store
from serve.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from serve.policy import may_assign, role

if TYPE_CHECKING:
    from engine.store.models import User

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_ERRORS)

#: `engine.store.roles.ROLES` (tests/serve/test_policy.py keeps them in step).
RoleName = Literal["owner", "admin", "member", "editor", "runner", "viewer"]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The change would leave the tenant without an owner."}
}


class UserCreate(RequestModel):
    """A new user of your tenant at a role; with `key`, also its first API key (the secret is in the response,
    once), with every scope but `admin`: what it allows follows the user's role, now and after a change."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
    role: RoleName = "viewer"
    email: str | None = Field(default=None, max_length=320)
    display_name: str = Field(default="", max_length=200)
    tenant: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The tenant's name (created if new); admin keys only. Default: your tenant.",
    )
    key: bool = Field(default=False, description="Also create the user's first API key.")


class RoleChange(RequestModel):
    """The user's new role in its tenant."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName


class UserOut(BaseModel):
    """A user: its tenant and role."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    email: str | None
    display_name: str
    tenant_id: str
    role: str
    disabled: bool
    created_at: datetime


class UserCreated(UserOut):
    """The new user, and its first API key's secret when asked for (shown only now)."""

    key: str | None = None
    key_prefix: str | None = None


class UserList(BaseModel):
    """Users, by username."""

    items: list[UserOut]


class RoleChanged(UserOut):
    """The user after the change, and the role it had before."""

    previous_role: str


def _visible_user(store: Store, principal: Principal, ident: str) -> User:
    """The user named by id or username if it is of the principal's tenant (any tenant for admin keys)."""
    try:
        user = store.users.get(ident)
    except StoreNotFound:
        try:
            user = store.users.get_by_username(ident)
        except StoreNotFound:
            user = None
    if user is None or not (principal.is_admin or user.tenant_id == principal.tenant_id):
        raise NotFoundError(f"user {ident!r} does not exist in your tenant; GET /v1/users lists them")
    return user


def _may_assign(principal: Principal, *roles: str) -> None:
    if principal.is_admin or may_assign(principal.role, *roles):
        return
    allowed = sorted(role(principal.role).assigns)
    raise ForbiddenError(
        f"your role {principal.role!r} may give and take away only the roles {allowed}, not "
        f"{sorted(set(roles) - set(allowed))}; ask an owner of the tenant"
    )


@router.post(
    "", status_code=201, response_model=UserCreated, summary="Create (invite) a user", responses=INVALID
)
def create_user(
    body: UserCreate,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("users:admin")),
) -> UserCreated:
    """Create a user in your tenant at `role` (one your role may give). With `key`, the response holds its first
    API key, shown only now."""
    _may_assign(principal, body.role)
    tenant_id = principal.tenant_id
    if body.tenant is not None:
        if not principal.is_admin:
            raise ForbiddenError("only admin keys may create users in another tenant; drop `tenant`")
        tenant_id = store.tenants.ensure(body.tenant).id
    try:
        user = store.users.create(
            body.username,
            email=body.email,
            display_name=body.display_name,
            tenant_id=tenant_id,
            role=body.role,
        )
    except ReservedUsernameError as exc:
        raise BadRequestError(f"username: {exc}") from None
    except ValueError as exc:
        raise ConflictError(str(exc)) from None
    request.state.audit_target = user.id
    created = UserCreated(**UserOut.model_validate(user).model_dump())
    if body.key:
        # Every scope but `admin`: the key follows the user's role (effective = role ∩ key), also after a change.
        key, secret = store.api_keys.create(
            user.id, name="first key (POST /v1/users)", scopes=[s for s in SCOPES if s != "admin"]
        )
        created.key, created.key_prefix = secret, key.prefix
    return created


@router.get("", response_model=UserList, summary="List users")
def list_users(
    tenant: str | None = Query(
        default=None, max_length=200, description="A tenant's name (admin keys only)."
    ),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("users:admin")),
) -> UserList:
    """The users of your tenant (admin keys: of every tenant, or of `tenant`), by username."""
    tenant_id: str | None = principal.tenant_id
    if principal.is_admin:
        tenant_id = None
        if tenant is not None:
            try:
                tenant_id = store.tenants.get_by_name(tenant).id
            except StoreNotFound:
                raise NotFoundError(f"tenant {tenant!r} does not exist") from None
    elif tenant is not None:
        raise ForbiddenError("only admin keys may list another tenant's users; drop `tenant`")
    return UserList(items=[UserOut.model_validate(u) for u in store.users.list(tenant_id=tenant_id)])


@router.get("/{user}", response_model=UserOut, summary="Get a user", responses=NOT_FOUND)
def get_user(
    user: str, store: Store = Depends(get_store), principal: Principal = Depends(require("users:admin"))
) -> UserOut:
    """One user of your tenant, by id or username."""
    return UserOut.model_validate(_visible_user(store, principal, user))


@router.put(
    "/{user}/role",
    response_model=RoleChanged,
    summary="Change a user's role",
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
)
def set_role(
    user: str,
    body: RoleChange,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("users:admin")),
) -> RoleChanged:
    """Give a user of your tenant another role (your role must be allowed to give both the old and the new one).
    The tenant's last enabled owner cannot be demoted (409). Audited with both roles."""
    target = _visible_user(store, principal, user)
    _may_assign(principal, target.role, body.role)
    try:
        changed, previous = store.users.set_role(target.id, body.role)
    except LastOwnerError as exc:
        raise ConflictError(str(exc)) from None
    request.state.audit_target = target.id
    _forget_keys(request, store, target.id)
    store.audit.append(
        principal.actor,
        "users.set_role",
        resource_type="users",
        resource_id=target.id,
        details={
            "username": target.username,
            "tenant": target.tenant_id,
            "from": previous,
            "to": body.role,
            "request_id": str(getattr(request.state, "request_id", "")),
        },
    )
    return RoleChanged(**UserOut.model_validate(changed).model_dump(), previous_role=previous)


def _forget_keys(request: Request, store: Store, user_id: str) -> None:
    """Drop the user's keys from this server's verified-key cache (other replicas re-read them within 0.5 s)."""
    cache = get_context(request).verified_keys
    for key in store.api_keys.list(user_id=user_id):
        cache.forget(key.id)


def _set_disabled(user: str, disabled: bool, request: Request, store: Store, principal: Principal) -> UserOut:
    target = _visible_user(store, principal, user)
    _may_assign(principal, target.role)
    try:
        changed = store.users.set_disabled(target.id, disabled)
    except LastOwnerError as exc:
        raise ConflictError(str(exc)) from None
    request.state.audit_target = target.id
    _forget_keys(request, store, target.id)
    store.audit.append(
        principal.actor,
        "users.disable" if disabled else "users.enable",
        resource_type="users",
        resource_id=target.id,
        details={
            "username": target.username,
            "tenant": target.tenant_id,
            "request_id": str(getattr(request.state, "request_id", "")),
        },
    )
    return UserOut.model_validate(changed)


@router.post(
    "/{user}/disable",
    response_model=UserOut,
    summary="Disable a user",
    responses={**NOT_FOUND, **CONFLICT},
)
def disable_user(
    user: str,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("users:admin")),
) -> UserOut:
    """Disable a user of your tenant: its keys stop working (on every replica within 0.5 s). Never the tenant's
    last enabled owner, nor the user holding the installation's last admin keys (409)."""
    return _set_disabled(user, True, request, store, principal)


@router.post("/{user}/enable", response_model=UserOut, summary="Enable a user", responses=NOT_FOUND)
def enable_user(
    user: str,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("users:admin")),
) -> UserOut:
    """Enable a disabled user of your tenant again; its keys work again."""
    return _set_disabled(user, False, request, store, principal)
