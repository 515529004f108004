"""API keys: create (the secret is in the response, once), list, rotate, revoke. `keys:admin` scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request, Response

from engine.store import InvalidApiKeyError, LastAdminKeyError, ReservedUsernameError, Store
from engine.store import NotFoundError as StoreNotFound
from serve.api.v1.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyRotate,
    KeyRotated,
    Problem,
    QueryBool,
)
from serve.auth import Principal, check_scopes, require
from serve.deps import get_context, get_store
from serve.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError

if TYPE_CHECKING:
    from engine.store.models import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"], responses=AUTH_ERRORS)


@router.post("", status_code=201, response_model=KeyCreated, summary="Create an API key", responses=INVALID)
def create_key(
    body: KeyCreate,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("keys:admin")),
) -> KeyCreated:
    """Create a key with some of your scopes (admins: any scopes, for any user). The secret is shown once."""
    try:
        scopes = check_scopes(body.scopes)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    if not principal.is_admin:
        beyond = sorted(s for s in scopes if not principal.allows(s))
        if beyond:
            raise ForbiddenError(f"a key cannot grant scopes it does not have: {beyond}")
        if body.username is not None:
            raise ForbiddenError("only admin keys may create keys for other users; drop `username`")
    user_id = principal.user_id
    if body.username is not None:
        try:
            user_id = store.users.get_by_username(body.username).id
        except StoreNotFound:
            try:
                user_id = store.users.create(body.username).id
            except ReservedUsernameError as exc:  # `oidc:...` users come only from OIDC logins
                raise BadRequestError(f"username: {exc}") from None
    expires_at = _expiry(body.expires_at, body.expires_in_s)
    key, secret = store.api_keys.create(user_id, name=body.name, scopes=scopes, expires_at=expires_at)
    request.state.audit_target = key.id
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=secret)


def _expiry(expires_at: datetime | None, expires_in_s: int | None) -> datetime | None:
    """The expiry a request asks for: `expires_at`, or now + `expires_in_s`; both, or a past time, are 400."""
    from engine.store.columns import utcnow

    now = utcnow()
    if expires_at is not None and expires_in_s is not None:
        raise BadRequestError("give `expires_at` or `expires_in_s`, not both")
    if expires_in_s is not None:
        return now + timedelta(seconds=expires_in_s)
    if expires_at is not None and expires_at <= now:
        raise BadRequestError(f"expires_at: {expires_at.isoformat()} is in the past; give a future time")
    return expires_at


@router.get("", response_model=KeyList, summary="List API keys")
def list_keys(
    include_revoked: QueryBool = False,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("keys:admin")),
) -> KeyList:
    """Your keys (every key for admins); never the secrets."""
    user_id = None if principal.is_admin else principal.user_id
    keys = store.api_keys.list(user_id=user_id, include_revoked=include_revoked)
    return KeyList(items=[KeyOut.model_validate(k) for k in keys])


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key",
    responses={
        **NOT_FOUND,
        409: {"model": Problem, "description": "The key is the last active admin key; create another first."},
    },
)
def revoke_key(
    key_id: str,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("keys:admin")),
) -> Response:
    """Revoke a key; it stops working at once. The last active admin key cannot be revoked (409): create
    another admin key first, so the installation always keeps an administrator."""
    _visible_key(store, principal, key_id)
    try:
        store.api_keys.revoke(key_id)
    except LastAdminKeyError as exc:
        raise ConflictError(str(exc)) from None
    get_context(request).verified_keys.forget(key_id)  # other replicas forget it within 0.5 s
    return Response(status_code=204)


@router.post(
    "/{key_id}/rotate",
    response_model=KeyRotated,
    summary="Rotate an API key",
    responses={
        **NOT_FOUND,
        **INVALID,
        409: {"model": Problem, "description": "The key is revoked or was rotated already."},
    },
)
def rotate_key(
    key_id: str,
    request: Request,
    body: KeyRotate | None = None,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("keys:admin")),
) -> KeyRotated:
    """Issue a new secret for the same user, name and scopes (shown once, in this response). The old key keeps
    working `grace_s` seconds (default 0: it is revoked at once), then is refused. The new key keeps the old
    one's lifetime unless `expires_at` or `expires_in_s` say otherwise."""
    body = body or KeyRotate()
    key = _visible_key(store, principal, key_id)
    if not principal.is_admin:
        beyond = sorted(s for s in key.scopes if not principal.allows(s))
        if beyond:
            raise ForbiddenError(f"a key cannot issue scopes it does not have: {beyond}")
    expires_at = _expiry(body.expires_at, body.expires_in_s)
    try:
        old, new, secret = store.api_keys.rotate(
            key_id, grace_s=body.grace_s, expires_at=expires_at, keep_expiry=body.expires_in_s is None
        )
    except InvalidApiKeyError as exc:
        raise ConflictError(str(exc)) from None
    get_context(request).verified_keys.forget(old.id)  # other replicas re-read it within 0.5 s
    request.state.audit_target = old.id
    store.audit.append(
        principal.actor,
        "keys.rotate",
        resource_type="keys",
        resource_id=old.id,
        details={
            "new_key_id": new.id,
            "old_prefix": old.prefix,
            "new_prefix": new.prefix,
            "grace_s": body.grace_s,
            "old_revoked_at": old.revoked_at.isoformat() if old.revoked_at else None,
            "request_id": str(getattr(request.state, "request_id", "")),
        },
    )
    return KeyRotated(
        **KeyOut.model_validate(new).model_dump(), key=secret, rotated=KeyOut.model_validate(old)
    )


def _visible_key(store: Store, principal: Principal, key_id: str) -> ApiKey:
    """The key `key_id` if the principal may see it; otherwise 404, as for a key that does not exist."""
    try:
        key = store.api_keys.get(key_id)
    except StoreNotFound:
        key = None
    if key is None or not principal.owns(key.user_id):
        raise NotFoundError(f"API key {key_id!r} does not exist; GET /v1/keys lists yours")
    return key
