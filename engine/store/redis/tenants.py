"""Tenants on Redis: one hash per tenant and a unique name key.

Keys (ADR 024): `tenant:{id}` (the `Tenant` record), `tenant-name:{name}` (its id: `SET NX` makes names unique),
`tenants` (ids scored 0). The default tenant is created on first use, as in the SQL store.
"""

from __future__ import annotations

import builtins
from typing import Any

from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Tenant
from engine.store.redis.base import RedisRepository, flat
from engine.store.redis.codec import Codec
from engine.store.tenants import DEFAULT_TENANT

# KEYS: the name key, the record, the listing. ARGV: id, then the record's field pairs.
_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1
"""


class RedisTenants(RedisRepository):
    """Tenants on Redis; implements `engine.store.protocol.Tenants`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(Tenant)
        self._create = self.script(_CREATE)

    def create(self, name: str) -> Tenant:
        """A new tenant; a duplicate name raises `ValueError`."""
        name = name.strip()
        if not name:
            raise ValueError("a tenant needs a name")
        tenant = Tenant(
            id=DEFAULT_TENANT if name == DEFAULT_TENANT else new_id(), name=name, created_at=utcnow()
        )
        keys = [self.keys("tenant-name", name), self.keys("tenant", tenant.id), self.keys("tenants")]
        if not self._create(keys=keys, args=[tenant.id, *flat(self.codec.dump(tenant))]):
            raise ValueError(f"tenant {name!r} already exists; pick another name")
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
        """One tenant by id; raises `NotFoundError` (the default tenant is created on first use)."""
        stored = self.client.hgetall(self.keys("tenant", tenant_id))
        if not stored:
            if tenant_id == DEFAULT_TENANT:
                return self.ensure(DEFAULT_TENANT)
            raise NotFoundError(f"tenant {tenant_id!r} does not exist")
        return self.codec.load(stored)

    def get_by_name(self, name: str) -> Tenant:
        """One tenant by name; raises `NotFoundError`."""
        tenant_id = self.client.get(self.keys("tenant-name", name))
        stored = self.client.hgetall(self.keys("tenant", tenant_id)) if tenant_id else {}
        if not stored:
            raise NotFoundError(f"tenant {name!r} does not exist")
        return self.codec.load(stored)

    def list(self) -> builtins.list[Tenant]:
        """Every tenant, by name."""
        pipe = self.client.pipeline(transaction=False)
        for tenant_id in self.client.zrange(self.keys("tenants"), 0, -1):
            pipe.hgetall(self.keys("tenant", tenant_id))
        return sorted((self.codec.load(s) for s in pipe.execute() if s), key=lambda tenant: tenant.name)
