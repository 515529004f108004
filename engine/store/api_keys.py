"""API keys: the secret is shown once at creation; only a public prefix and its SHA-256 are stored.

A key looks like `rw_<prefix>_<secret>`: the prefix finds the row with an indexed lookup, the hash of the whole
key is then compared in constant time. The store caches nothing: `verify` reads the row every time, so a
revocation is seen at once by every reader (servers remember a verified key for at most 0.5 s on top, see
`serve.key_cache`). A rotation replaces a key with a new secret of the same user, name and scopes; the old
key's `revoked_at` is then set to the end of its grace period (possibly in the future: it keeps verifying until
then). SHA-256 (not a slow password hash) is right here because the secret is
256 random bits, not a human-chosen password, so it cannot be guessed by brute force.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import new_id, utcnow
from engine.store.errors import InvalidApiKeyError, LastAdminKeyError, NotFoundError
from engine.store.models import ApiKey, User, table_of

KEY_MARKER = "rw"
#: Scopes that make a key an admin key (`admin` implies every other scope, as does `*`).
ADMIN_SCOPES = frozenset({"admin", "*"})
#: Writing `last_used_at` on every request would turn each authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


#: How a key past its `expires_at` is refused: the reason and how to get a working key again.
EXPIRED_HINT = "ask for a new key: POST /v1/keys with a keys:admin key, or `rayweave keys create` where the store is reachable"


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) of a full API key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def grants_admin(scopes: Collection[str]) -> bool:
    """Whether a key with `scopes` is an admin key."""
    return any(scope in ADMIN_SCOPES for scope in scopes)


def scope_allows(scopes: Collection[str], required: str) -> bool:
    """Whether granted `scopes` cover `required` (`"runs:write"`): an exact match, `"runs:*"`, or `"*"`."""
    area = required.split(":", 1)[0]
    return required in scopes or f"{area}:*" in scopes or "*" in scopes


def prefix_of(secret: str) -> str:
    """The public prefix of a presented key; `InvalidApiKeyError` when it does not look like a key."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_MARKER:
        raise InvalidApiKeyError("the API key is malformed; keys look like rw_<prefix>_<secret>")
    return parts[1]


def check_presented(key: ApiKey | None, user: User | None, secret: str, now: datetime) -> tuple[ApiKey, User]:
    """`key` and `user` if the presented secret is valid at `now` with them (`key` the record its prefix found,
    `user` the key's user): hash equal (compared in constant time), not revoked, not expired, user enabled.
    Otherwise `InvalidApiKeyError`, never echoing the secret."""
    if key is None or user is None or not hmac.compare_digest(key.key_hash, hash_secret(secret)):
        raise InvalidApiKeyError("the API key is not valid; create a new key")
    if key.revoked_at is not None and key.revoked_at <= now:
        raise InvalidApiKeyError(f"API key {key.prefix!r} was revoked; create a new key")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidApiKeyError(
            f"API key {key.prefix!r} expired at {key.expires_at.isoformat()}; {EXPIRED_HINT}"
        )
    if user.disabled:
        raise InvalidApiKeyError(f"API key {key.prefix!r} belongs to a disabled user")
    return key, user


def stale_last_used(key: ApiKey, now: datetime) -> bool:
    """Whether a verification at `now` should record `last_used_at` (at most once per `LAST_USED_RESOLUTION`)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def last_admin_key_error(key: ApiKey) -> LastAdminKeyError:
    """Why revoking the last active admin key is refused."""
    return LastAdminKeyError(
        f"API key {key.prefix!r} is the last active admin key; revoking it would leave nobody "
        "able to administer this installation. Create another admin key first (POST /v1/keys "
        'with scopes ["admin"], or `rayweave keys create --admin` where the store is '
        "reachable), then revoke this one"
    )


def rotated_key_error(old: ApiKey) -> InvalidApiKeyError:
    """Why a revoked (or already rotated) key cannot be rotated."""
    until = old.revoked_at.isoformat() if old.revoked_at is not None else "now"
    return InvalidApiKeyError(
        f"API key {old.prefix!r} is revoked or already rotated (until {until}); "
        "rotate its replacement or create a new key"
    )


def rotated_expiry(
    old: ApiKey, now: datetime, expires_at: datetime | None, keep_expiry: bool
) -> datetime | None:
    """When the replacement of `old` rotated at `now` expires: `expires_at`, else (with `keep_expiry`) the old
    key's lifetime from now, if it had one."""
    if expires_at is None and keep_expiry and old.expires_at is not None:
        return now + (old.expires_at - old.created_at)
    return expires_at


class ApiKeyRepository(Repository):
    """API keys of users."""

    def create(
        self,
        user_id: str,
        *,
        name: str = "",
        scopes: Collection[str] = (),
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key for a user; returns the record and the secret key, which cannot be recovered later."""
        key, secret = new_key(user_id, name=name, scopes=scopes, expires_at=expires_at)
        with self.session() as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(f"user {user_id!r} does not exist; create the user before its API key")
            session.add(key)
        return key, secret

    def verify(self, secret: str, *, now: datetime | None = None) -> ApiKey:
        """The key record for a presented secret; raises `InvalidApiKeyError` if it is unknown, malformed,
        revoked, expired or belongs to a disabled user. The message never echoes the secret."""
        return self.verify_with_user(secret, now=now)[0]

    def verify_with_user(self, secret: str, *, now: datetime | None = None) -> tuple[ApiKey, User]:
        """The key record for a presented secret and its user (with the user's tenant and role), read in one
        joined query; refused as `verify` refuses."""
        now = now or utcnow()
        prefix = prefix_of(secret)
        # Core, not the ORM, and no transaction (one statement needs none: no BEGIN, no ROLLBACK round trip on
        # PostgreSQL): this runs on every request whose key is not in the server's 0.5 s cache.
        with self._autocommit().connect() as connection:
            row = connection.execute(_verify_query(), {"prefix": prefix}).mappings().first()
        key, user = _key_and_user(row) if row is not None else (None, None)
        key, user = check_presented(key, user, secret, now)
        if stale_last_used(key, now):
            # A separate short write, so verification itself never waits for the write lock.
            with self.session() as session:
                session.execute(sa.update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
            key.last_used_at = now
        return key, user

    def _autocommit(self) -> Any:
        """The engine in AUTOCOMMIT mode, made once (making one per call costs more than planning the query)."""
        engine = self.__dict__.get("_autocommit_engine")
        if engine is None:
            engine = self.__dict__["_autocommit_engine"] = self.engine.execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return engine

    def get(self, key_id: str) -> ApiKey:
        """One key record by id; raises `NotFoundError`."""
        with self.reading() as session:
            key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        return key

    def list(self, *, user_id: str | None = None, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """Key records (never secrets), newest first. A rotated key in its grace period is listed (it still
        works, and shows when it stops in `revoked_at`) unless revoked keys are asked for too."""
        query = select(ApiKey)
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        if not include_revoked:
            query = query.where(sa.or_(col(ApiKey.revoked_at).is_(None), col(ApiKey.revoked_at) > utcnow()))
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(col(ApiKey.created_at).desc())))

    def active_admin_keys(self, *, now: datetime | None = None) -> builtins.list[ApiKey]:
        """The keys that act as admin now: an admin scope, not revoked, not expired, their user enabled."""
        with self.reading() as session:
            return self._active_admin(session, now or utcnow(), lock=False)

    @staticmethod
    def _active_admin(session: Any, now: datetime, *, lock: bool) -> builtins.list[ApiKey]:
        query = (
            select(ApiKey)
            .join(User, col(User.id) == col(ApiKey.user_id))
            .where(col(ApiKey.revoked_at).is_(None), col(User.disabled).is_(False))
            .where(sa.or_(col(ApiKey.expires_at).is_(None), col(ApiKey.expires_at) > now))
        )
        if lock:
            # PostgreSQL and MariaDB: a concurrent revocation of another admin key waits for this one and
            # then sees it revoked (SQLite's write transaction holds the whole database already). Only the key
            # rows, in one order: locking the joined user row too let two revocations deadlock on it.
            query = query.order_by(col(ApiKey.id)).with_for_update(of=ApiKey)
        return [key for key in session.exec(query) if grants_admin(key.scopes)]

    def revoke(self, key_id: str, *, keep_an_admin: bool = True) -> ApiKey:
        """Revoke a key (it stops verifying at once); revoking twice keeps the first revocation time, and
        revoking a rotated key in its grace period ends the grace now.

        With `keep_an_admin` (the default), revoking the last active admin key raises `LastAdminKeyError`
        instead: nobody could administer the installation afterwards. The check and the revocation are one
        transaction, so two concurrent revocations cannot remove the last two admin keys together.
        """
        with self.session() as session:
            key = session.get(ApiKey, key_id)
            if key is None:
                raise NotFoundError(f"API key {key_id!r} does not exist; nothing to revoke")
            if keep_an_admin and key.revoked_at is None and grants_admin(key.scopes):
                admins = self._active_admin(session, utcnow(), lock=True)
                if [admin.id for admin in admins] == [key_id]:
                    raise last_admin_key_error(key)
            now = utcnow()
            session.execute(
                sa.update(ApiKey)
                .where(col(ApiKey.id) == key_id)
                .where(sa.or_(col(ApiKey.revoked_at).is_(None), col(ApiKey.revoked_at) > now))
                .values(revoked_at=now)
            )
            key = session.get(ApiKey, key_id, populate_existing=True)
            if key is None:
                raise NotFoundError(f"API key {key_id!r} does not exist; nothing to revoke")
        return key

    def rotate(
        self,
        key_id: str,
        *,
        grace_s: float = 0.0,
        expires_at: datetime | None = None,
        keep_expiry: bool = True,
    ) -> tuple[ApiKey, ApiKey, str]:
        """Replace a key by a new secret of the same user, name and scopes, in one transaction.

        The old key is revoked `grace_s` seconds from now (0: at once), so clients can switch meanwhile. The new
        key expires at `expires_at`; when that is `None` and `keep_expiry` is set, it keeps the old key's
        lifetime (`expires_at - created_at`, from now), if the old key had one. Returns the old record (with its
        new `revoked_at`), the new record and its secret. A revoked key, or one already rotated, raises
        `InvalidApiKeyError`: rotate its replacement instead.
        """
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        now = utcnow()
        with self.session() as session:
            old = session.get(ApiKey, key_id)
            if old is None:
                raise NotFoundError(f"API key {key_id!r} does not exist; nothing to rotate")
            if old.revoked_at is not None:
                raise rotated_key_error(old)
            expires_at = rotated_expiry(old, now, expires_at, keep_expiry)
            new, secret = new_key(old.user_id, name=old.name, scopes=old.scopes, expires_at=expires_at)
            session.add(new)
            old.revoked_at = now + timedelta(seconds=grace_s)
            session.add(old)
            session.flush()
            session.refresh(old)
            session.refresh(new)
        return old, new, secret


@cache
def _verify_query() -> sa.Select[Any]:
    """The one joined read of a key by prefix with its user (user columns labelled `u__<name>`)."""
    keys, users = table_of(ApiKey), table_of(User)
    return (
        sa.select(*keys.c, *(column.label(f"u__{column.name}") for column in users.c))
        .join(users, users.c.id == keys.c.user_id)
        .where(keys.c.prefix == sa.bindparam("prefix"))
    )


def _key_and_user(row: Any) -> tuple[ApiKey, User]:
    keys, users = table_of(ApiKey), table_of(User)
    key = ApiKey(**{column.name: row[column.name] for column in keys.c})
    user = User(**{column.name: row[f"u__{column.name}"] for column in users.c})
    return key, user


def new_key(
    user_id: str, *, name: str, scopes: Collection[str], expires_at: datetime | None
) -> tuple[ApiKey, str]:
    """A new key record of a user and its secret (`rw_<prefix>_<secret>`, 256 random bits); not stored yet."""
    prefix = secrets.token_hex(6)
    secret = f"{KEY_MARKER}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=new_id(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    return key, secret
