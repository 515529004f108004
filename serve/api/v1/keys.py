"""API keys: create (the secret is in the response, once), list, revoke. `keys:admin` scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from engine.store import LastAdminKeyError, ReservedUsernameError, Store
from engine.store import NotFoundError as StoreNotFound
from serve.api.v1.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    Problem,
    QueryBool,
)
from serve.auth import Principal, check_scopes, require
from serve.deps import get_store
from serve.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError

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
    key, secret = store.api_keys.create(user_id, name=body.name, scopes=scopes, expires_at=body.expires_at)
    request.state.audit_target = key.id
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=secret)


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
    key_id: str, store: Store = Depends(get_store), principal: Principal = Depends(require("keys:admin"))
) -> Response:
    """Revoke a key; it stops working at once. The last active admin key cannot be revoked (409): create
    another admin key first, so the installation always keeps an administrator."""
    try:
        key = store.api_keys.get(key_id)
    except StoreNotFound:
        key = None
    if key is None or not principal.owns(key.user_id):
        raise NotFoundError(f"API key {key_id!r} does not exist; GET /v1/keys lists yours")
    try:
        store.api_keys.revoke(key_id)
    except LastAdminKeyError as exc:
        raise ConflictError(str(exc)) from None
    return Response(status_code=204)
