"""Tenants: groups of users; each user belongs to one, with one role (`engine.store.roles`).

The default tenant (`DEFAULT_TENANT`) holds every user created without one; it is created on first use, so an
empty database holds no tenant row (a copy between installations starts from empty tables).
"""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Tenant

#: The id (and name) of the tenant users are put in unless told otherwise.
DEFAULT_TENANT = "default"


def ensure_default_tenant(session: Any) -> None:
    """Create the default tenant within `session` unless it exists."""
    if session.get(Tenant, DEFAULT_TENANT) is None:
        session.add(Tenant(id=DEFAULT_TENANT, name=DEFAULT_TENANT, created_at=utcnow()))
        session.flush()


class TenantRepository(Repository):
    """Tenants."""

    def create(self, name: str) -> Tenant:
        """A new tenant; a duplicate name raises `ValueError`."""
        name = name.strip()
        if not name:
            raise ValueError("a tenant needs a name")
        tenant = Tenant(
            id=DEFAULT_TENANT if name == DEFAULT_TENANT else new_id(), name=name, created_at=utcnow()
        )
        try:
            with self.session() as session:
                session.add(tenant)
        except sa.exc.IntegrityError as exc:
            raise ValueError(f"tenant {name!r} already exists; pick another name") from exc
        return tenant

    def ensure(self, name: str) -> Tenant:
        """The tenant called `name`, created if new."""
        try:
            return self.get_by_name(name)
        except NotFoundError:
            pass
        try:
            return self.create(name)
        except ValueError:  # created by a concurrent caller
            return self.get_by_name(name)

    def get(self, tenant_id: str) -> Tenant:
        """One tenant by id; raises `NotFoundError`."""
        with self.reading() as session:
            tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            if tenant_id == DEFAULT_TENANT:
                return self.ensure(DEFAULT_TENANT)
            raise NotFoundError(f"tenant {tenant_id!r} does not exist")
        return tenant

    def get_by_name(self, name: str) -> Tenant:
        """One tenant by name; raises `NotFoundError`."""
        with self.reading() as session:
            tenant = session.exec(select(Tenant).where(Tenant.name == name)).first()
        if tenant is None:
            raise NotFoundError(f"tenant {name!r} does not exist")
        return tenant

    def list(self) -> builtins.list[Tenant]:
        """Every tenant, by name."""
        with self.reading() as session:
            return builtins.list(session.exec(select(Tenant).order_by(col(Tenant.name))))
