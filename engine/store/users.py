"""Users, their tenant and role, and their permissions (grants of an action on a resource type and id, `"*"`
matching any).

Each user belongs to one tenant (`engine.store.tenants`, the default one unless told) with one role
(`engine.store.roles`). `set_role` and `set_disabled` never leave a tenant without an enabled owner, nor the
installation without a user holding an active admin key (`LastOwnerError`): the check and the change are one
transaction, with the tenant's row locked on PostgreSQL so two concurrent changes cannot remove the last two.

User names starting with a prefix of `RESERVED_PREFIXES` belong to identities of an external provider (`oidc:<sub>`
for OIDC logins) and are created only by `ensure_external`: a local user of such a name would be shared by whoever
logs in with that subject.
"""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError, ReservedUsernameError
from engine.store.models import Permission, Tenant, User
from engine.store.roles import ADMIN_ROLE, DEFAULT_ROLE, OWNER_ROLE, LastOwnerError, check_role
from engine.store.tenants import DEFAULT_TENANT, ensure_default_tenant

ANY = "*"

#: The namespace of users mapped from OIDC tokens (`oidc:<subject>`).
OIDC_PREFIX = "oidc:"
#: User name prefixes only identity providers may create users under (compared without regard to case).
RESERVED_PREFIXES = (OIDC_PREFIX,)


def reserved_prefix(username: str) -> str | None:
    """The reserved prefix `username` starts with (ignoring case), or None for an ordinary local name."""
    folded = username.casefold()
    return next((p for p in RESERVED_PREFIXES if folded.startswith(p)), None)


def last_owner_error(user: User, change: str) -> LastOwnerError:
    """Why `change` ("disabling", "making 'admin'") of the last enabled owner of a tenant is refused."""
    return LastOwnerError(
        f"user {user.username!r} is the last enabled owner of tenant {user.tenant_id!r}; {change} it would "
        "leave nobody able to manage the tenant's users. Make another user owner first "
        "(PUT /v1/users/{user}/role, or `rayweave users set-role USER owner`)"
    )


def last_admin_user_error(user: User) -> LastOwnerError:
    """Why disabling the user who holds every active admin key is refused."""
    return LastOwnerError(
        f"user {user.username!r} holds every active admin key; disabling it would leave nobody able to "
        "administer this installation. Create an admin key of another user first (`rayweave keys create "
        "--admin --user NAME`), then disable this one"
    )


def reserved_name_error(username: str, prefix: str) -> ReservedUsernameError:
    """Why a local user may not be called `username` (it starts with the reserved `prefix`)."""
    return ReservedUsernameError(
        f"username {username!r} starts with {prefix!r}, which is reserved for users of the identity "
        f"provider (they are created when they first log in); pick a name without {prefix!r}"
    )


class UserCreation:
    """Creating users, the same on every backend (`UserRepository` on SQL, `engine.store.redis.users` on Redis):
    local names may not start with a reserved prefix, an identity provider's users are made on first sight, and
    a new user's role defaults from `is_admin`. A backend stores the new record (`_store_new`, `ValueError` for a
    taken name) and finds one by name (`get_by_username`)."""

    def create(
        self,
        username: str,
        *,
        email: str | None = None,
        display_name: str = "",
        is_admin: bool = False,
        tenant_id: str | None = None,
        role: str | None = None,
    ) -> User:
        """Create a local user; the username must be unique (a duplicate raises `ValueError`) and must not start
        with a reserved prefix such as `oidc:` (`ReservedUsernameError`). It joins `tenant_id` (default: the
        default tenant) as `role` (default: `owner` for `is_admin`, else `member`, what users could do before
        roles)."""
        prefix = reserved_prefix(username)
        if prefix is not None:
            raise reserved_name_error(username, prefix)
        return self._insert(
            username,
            email=email,
            display_name=display_name,
            is_admin=is_admin,
            tenant_id=tenant_id,
            role=role,
        )

    def ensure_external(self, prefix: str, subject: str) -> User:
        """The user `<prefix><subject>` of an identity provider, created on first sight; `prefix` must be one of
        `RESERVED_PREFIXES` (e.g. `OIDC_PREFIX`)."""
        if prefix not in RESERVED_PREFIXES:
            raise ValueError(f"{prefix!r} is not a reserved prefix; use one of {RESERVED_PREFIXES}")
        username = prefix + subject
        try:
            return self.get_by_username(username)
        except NotFoundError:
            pass
        try:
            return self._insert(username)
        except ValueError:  # created by a concurrent request
            return self.get_by_username(username)

    def get_by_username(self, username: str) -> User:
        """One user by username; raises `NotFoundError`."""
        raise NotImplementedError

    def _store_new(self, user: User) -> User:
        raise NotImplementedError

    def _insert(
        self,
        username: str,
        *,
        email: str | None = None,
        display_name: str = "",
        is_admin: bool = False,
        tenant_id: str | None = None,
        role: str | None = None,
    ) -> User:
        user = User(
            id=new_id(),
            username=username,
            email=email,
            display_name=display_name,
            is_admin=is_admin,
            created_at=utcnow(),
            tenant_id=tenant_id or DEFAULT_TENANT,
            role=check_role(role or (ADMIN_ROLE if is_admin else DEFAULT_ROLE)),
        )
        return self._store_new(user)


class UserRepository(UserCreation, Repository):
    """Users and permissions."""

    def _store_new(self, user: User) -> User:
        try:
            with self.session() as session:
                if user.tenant_id == DEFAULT_TENANT:
                    ensure_default_tenant(session)
                elif session.get(Tenant, user.tenant_id) is None:
                    raise NotFoundError(f"tenant {user.tenant_id!r} does not exist; create it first")
                session.add(user)
        except sa.exc.IntegrityError as exc:
            raise ValueError(f"user {user.username!r} already exists; pick another username") from exc
        return user

    def get(self, user_id: str) -> User:
        """One user by id; raises `NotFoundError`."""
        with self.reading() as session:
            user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        return user

    def get_by_username(self, username: str) -> User:
        """One user by username; raises `NotFoundError`."""
        with self.reading() as session:
            user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFoundError(f"user {username!r} does not exist; create it first")
        return user

    def list(self, *, tenant_id: str | None = None) -> builtins.list[User]:
        """Every user (of `tenant_id` when given), by username."""
        query = select(User)
        if tenant_id is not None:
            query = query.where(User.tenant_id == tenant_id)
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(col(User.username))))

    def set_disabled(self, user_id: str, disabled: bool, *, keep_an_owner: bool = True) -> User:
        """Disable (or re-enable) a user; a disabled user's keys stop verifying. With `keep_an_owner` (the
        default), disabling the last enabled owner of a tenant, or the last user holding an active admin key,
        raises `LastOwnerError` instead."""
        with self.session() as session:
            user = self._locked(session, user_id)
            if disabled and not user.disabled and keep_an_owner:
                self._keep_owner(session, user, "disabling")
                self._keep_installation_admin(session, user)
            user.disabled = disabled
            session.add(user)
        return user

    def set_role(self, user_id: str, role: str, *, keep_an_owner: bool = True) -> tuple[User, str]:
        """Give a user another role in its tenant; returns the user and its previous role. Demoting the last
        enabled owner of a tenant raises `LastOwnerError` (unless `keep_an_owner` is false)."""
        check_role(role)
        with self.session() as session:
            user = self._locked(session, user_id)
            previous = user.role
            if role != OWNER_ROLE and keep_an_owner and not user.disabled:
                self._keep_owner(session, user, f"making {role!r}")
            user.role = role
            session.add(user)
        return user, previous

    @staticmethod
    def _locked(session: Any, user_id: str) -> User:
        """The user, its tenant's row locked for the transaction (PostgreSQL; SQLite holds the write lock)."""
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        session.exec(select(Tenant.id).where(Tenant.id == user.tenant_id).with_for_update()).first()
        return session.get(User, user_id, populate_existing=True)  # type: ignore[no-any-return]

    @staticmethod
    def _keep_owner(session: Any, user: User, change: str) -> None:
        if user.role != OWNER_ROLE or user.disabled:
            return
        others = session.exec(
            select(User.id).where(
                User.tenant_id == user.tenant_id,
                User.role == OWNER_ROLE,
                col(User.disabled).is_(False),
                User.id != user.id,
            )
        ).first()
        if others is None:
            raise last_owner_error(user, change)

    @staticmethod
    def _keep_installation_admin(session: Any, user: User) -> None:
        from engine.store.api_keys import ApiKeyRepository

        admins = ApiKeyRepository._active_admin(session, utcnow(), lock=False)
        if admins and all(key.user_id == user.id for key in admins):
            raise last_admin_user_error(user)

    def grant(
        self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY
    ) -> Permission:
        """Allow `user_id` to perform `action` on the resource; granting twice is harmless."""
        with self.session() as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(f"user {user_id!r} does not exist; cannot grant {action!r}")
            existing = session.exec(
                select(Permission).where(
                    Permission.user_id == user_id,
                    Permission.action == action,
                    Permission.resource_type == resource_type,
                    Permission.resource_id == resource_id,
                )
            ).first()
            if existing is not None:
                return existing
            grant = Permission(
                user_id=user_id,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                created_at=utcnow(),
            )
            session.add(grant)
        return grant

    def revoke(self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY) -> bool:
        """Remove a grant; False when there was none."""
        with self.session() as session:
            result = session.execute(
                sa.delete(Permission).where(
                    col(Permission.user_id) == user_id,
                    col(Permission.action) == action,
                    col(Permission.resource_type) == resource_type,
                    col(Permission.resource_id) == resource_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def permissions(self, user_id: str) -> builtins.list[Permission]:
        """The grants of a user."""
        with self.reading() as session:
            return builtins.list(
                session.exec(
                    select(Permission).where(Permission.user_id == user_id).order_by(col(Permission.id))
                )
            )

    def is_allowed(self, user_id: str, action: str, resource_type: str, resource_id: str = ANY) -> bool:
        """Whether the user may perform `action` on the resource: admins may do anything, disabled users
        nothing; otherwise a grant must match (its type, id or action may be `"*"`)."""
        with self.reading() as session:
            user = session.get(User, user_id)
            if user is None or user.disabled:
                return False
            if user.is_admin:
                return True
            match = session.exec(
                select(Permission.id).where(
                    Permission.user_id == user_id,
                    col(Permission.action).in_([action, ANY]),
                    col(Permission.resource_type).in_([resource_type, ANY]),
                    col(Permission.resource_id).in_([resource_id, ANY]),
                )
            ).first()
            return match is not None
