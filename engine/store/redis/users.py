"""Users, their tenant and role, and their permissions on Redis.

Keys (ADR 024): `user:{id}` (the `User` record), `user-name:{username}` (its id: `SET NX` makes names unique),
`users` (every id, scored 0), `tenant:{tenant}:users` (a set: the tenant's users), `tenant:{tenant}:owners` (a
set: its enabled owners, what the last-owner rule counts), `perms:{user}` (a hash: `["action","type","id"]` ->
`{id}:{created_at}`) and `perm-seq` (the counter numbering grants, as the SQL table's key does).

`set_role` and `set_disabled` are one Lua script each: the script reads the tenant's enabled owners, and for a
disabling the active admin keys (`engine.store.redis.api_keys.ACTIVE_ADMINS`), then changes the user, so no
concurrent change (another demotion, a key revocation) can slip in between the check and the change.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Permission, User
from engine.store.redis.api_keys import ACTIVE_ADMINS
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, dump_json, from_micros, to_micros
from engine.store.redis.tenants import RedisTenants
from engine.store.roles import OWNER_ROLE, check_role
from engine.store.tenants import DEFAULT_TENANT
from engine.store.users import ANY, UserCreation, last_admin_user_error, last_owner_error

# KEYS: the tenant, the name key, the user, the listing, the tenant's users, its owners. ARGV: id, an enabled
# owner ('1'/'0'), then the record's field pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'tenant' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX') == false then return 'exists' end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('ZADD', KEYS[4], 0, ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[6], ARGV[1]) end
return 'ok'
"""

# Whether user `id`, an enabled owner of the tenant whose owners set is `owners`, is its last one.
_LAST_OWNER = """
local function last_owner(owners, id)
  return redis.call('SCARD', owners) - redis.call('SISMEMBER', owners, id) == 0
end
"""

# KEYS: the user. ARGV: prefix, id, disable ('1'/'0'), keep an owner ('1'/'0'), now (microseconds).
_SET_DISABLED = (
    ACTIVE_ADMINS
    + _LAST_OWNER
    + """
local cur = redis.call('HMGET', KEYS[1], 'tenant_id', 'role', 'disabled')
if not cur[1] then return {'missing'} end
local owners = ARGV[1] .. ':tenant:' .. cur[1] .. ':owners'
if ARGV[3] == '1' and cur[3] ~= 'true' and ARGV[4] == '1' then
  if cur[2] == 'owner' and last_owner(owners, ARGV[2]) then
    return {'owner', redis.call('HGETALL', KEYS[1])}
  end
  local admins = active_admins(ARGV[1], tonumber(ARGV[5]))
  local others = false
  for _, admin in ipairs(admins) do
    if admin[2] ~= ARGV[2] then others = true end
  end
  if #admins > 0 and not others then return {'admin', redis.call('HGETALL', KEYS[1])} end
end
redis.call('HSET', KEYS[1], 'disabled', ARGV[3] == '1' and 'true' or 'false')
if cur[2] == 'owner' and ARGV[3] == '0' then redis.call('SADD', owners, ARGV[2]) end
if ARGV[3] == '1' then redis.call('SREM', owners, ARGV[2]) end
return {'ok', redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: the user. ARGV: prefix, id, role, keep an owner ('1'/'0').
_SET_ROLE = (
    _LAST_OWNER
    + """
local cur = redis.call('HMGET', KEYS[1], 'tenant_id', 'role', 'disabled')
if not cur[1] then return {'missing'} end
local owners = ARGV[1] .. ':tenant:' .. cur[1] .. ':owners'
local enabled = cur[3] ~= 'true'
if ARGV[3] ~= 'owner' and ARGV[4] == '1' and enabled and cur[2] == 'owner' and last_owner(owners, ARGV[2]) then
  return {'owner', redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'role', ARGV[3])
if enabled and ARGV[3] == 'owner' then
  redis.call('SADD', owners, ARGV[2])
else
  redis.call('SREM', owners, ARGV[2])
end
return {'ok', cur[2], redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: the user, its grants, the grant counter. ARGV: the grant's field, created_at. Returns its value.
_GRANT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local value = redis.call('HGET', KEYS[2], ARGV[1])
if value then return value end
value = redis.call('INCR', KEYS[3]) .. ':' .. ARGV[2]
redis.call('HSET', KEYS[2], ARGV[1], value)
return value
"""


class RedisUsers(UserCreation, RedisRepository):
    """Users and permissions on Redis; implements `engine.store.protocol.Users` as `engine.store.users` does."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(User)
        self._tenants = RedisTenants(*args)
        self._create = self.script(_CREATE)
        self._set_disabled = self.script(_SET_DISABLED)
        self._set_role = self.script(_SET_ROLE)
        self._grant = self.script(_GRANT)

    def _store_new(self, user: User) -> User:
        if user.tenant_id == DEFAULT_TENANT:
            self._tenants.get(DEFAULT_TENANT)  # made on first use
        k = self.keys
        outcome = self._create(
            keys=[
                k("tenant", user.tenant_id),
                k("user-name", user.username),
                k("user", user.id),
                k("users"),
                k("tenant", user.tenant_id, "users"),
                k("tenant", user.tenant_id, "owners"),
            ],
            args=[user.id, "1" if user.role == OWNER_ROLE else "0", *flat(self.codec.dump(user))],
        )
        if outcome == "tenant":
            raise NotFoundError(f"tenant {user.tenant_id!r} does not exist; create it first")
        if outcome == "exists":
            raise ValueError(f"user {user.username!r} already exists; pick another username")
        return user

    def get(self, user_id: str) -> User:
        """One user by id; raises `NotFoundError`."""
        stored = self.client.hgetall(self.keys("user", user_id))
        if not stored:
            raise NotFoundError(f"user {user_id!r} does not exist")
        return self.codec.load(stored)

    def get_by_username(self, username: str) -> User:
        """One user by username; raises `NotFoundError`."""
        user_id = self.client.get(self.keys("user-name", username))
        stored = self.client.hgetall(self.keys("user", user_id)) if user_id else {}
        if not stored:
            raise NotFoundError(f"user {username!r} does not exist; create it first")
        return self.codec.load(stored)

    def list(self, *, tenant_id: str | None = None) -> builtins.list[User]:
        """Every user (of `tenant_id` when given), by username."""
        if tenant_id is None:
            ids = self.client.zrange(self.keys("users"), 0, -1)
        else:
            ids = self.client.smembers(self.keys("tenant", tenant_id, "users"))
        pipe = self.client.pipeline(transaction=False)
        for user_id in ids:
            pipe.hgetall(self.keys("user", user_id))
        return sorted((self.codec.load(s) for s in pipe.execute() if s), key=lambda user: user.username)

    def set_disabled(self, user_id: str, disabled: bool, *, keep_an_owner: bool = True) -> User:
        """Disable (or re-enable) a user; its keys stop verifying. With `keep_an_owner`, disabling the last
        enabled owner of a tenant, or the last user holding an active admin key, raises `LastOwnerError`."""
        outcome = self.reply(
            self._set_disabled(
                keys=[self.keys("user", user_id)],
                args=[
                    self.keys.prefix,
                    user_id,
                    "1" if disabled else "0",
                    "1" if keep_an_owner else "0",
                    to_micros(utcnow()),
                ],
            )
        )
        if outcome[0] == "missing":
            raise NotFoundError(f"user {user_id!r} does not exist")
        user = self.codec.load(as_dict(outcome[1]))
        if outcome[0] == "owner":
            raise last_owner_error(user, "disabling")
        if outcome[0] == "admin":
            raise last_admin_user_error(user)
        return user

    def set_role(self, user_id: str, role: str, *, keep_an_owner: bool = True) -> tuple[User, str]:
        """Give a user another role in its tenant; returns the user and its previous role. Demoting the last
        enabled owner of a tenant raises `LastOwnerError` (unless `keep_an_owner` is false)."""
        check_role(role)
        outcome = self.reply(
            self._set_role(
                keys=[self.keys("user", user_id)],
                args=[self.keys.prefix, user_id, role, "1" if keep_an_owner else "0"],
            )
        )
        if outcome[0] == "missing":
            raise NotFoundError(f"user {user_id!r} does not exist")
        if outcome[0] == "owner":
            raise last_owner_error(self.codec.load(as_dict(outcome[1])), f"making {role!r}")
        return self.codec.load(as_dict(outcome[2])), outcome[1]

    def grant(
        self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY
    ) -> Permission:
        """Allow `user_id` to perform `action` on the resource; granting twice is harmless."""
        value = self._grant(
            keys=[self.keys("user", user_id), self.keys("perms", user_id), self.keys("perm-seq")],
            args=[_grant_field(action, resource_type, resource_id), to_micros(utcnow())],
        )
        if value is None:
            raise NotFoundError(f"user {user_id!r} does not exist; cannot grant {action!r}")
        return _permission(user_id, (action, resource_type, resource_id), value)

    def revoke(self, user_id: str, action: str, resource_type: str = ANY, resource_id: str = ANY) -> bool:
        """Remove a grant; False when there was none."""
        field = _grant_field(action, resource_type, resource_id)
        return bool(self.client.hdel(self.keys("perms", user_id), field))

    def permissions(self, user_id: str) -> builtins.list[Permission]:
        """The grants of a user, in the order they were made."""
        stored = self.client.hgetall(self.keys("perms", user_id))
        grants = [_permission(user_id, _grant_of(field), value) for field, value in stored.items()]
        return sorted(grants, key=lambda grant: grant.id or 0)

    def is_allowed(self, user_id: str, action: str, resource_type: str, resource_id: str = ANY) -> bool:
        """Whether the user may perform `action` on the resource: admins may do anything, disabled users
        nothing; otherwise a grant must match (its type, id or action may be `"*"`). One round trip."""
        fields = [
            _grant_field(a, t, i)
            for a in {action, ANY}
            for t in {resource_type, ANY}
            for i in {resource_id, ANY}
        ]
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys("user", user_id), ["disabled", "is_admin"])
        pipe.hmget(self.keys("perms", user_id), fields)
        (disabled, is_admin), grants = pipe.execute()
        if disabled is None or disabled == "true":
            return False
        return is_admin == "true" or any(grant is not None for grant in grants)


def _grant_field(action: str, resource_type: str, resource_id: str) -> str:
    return dump_json([action, resource_type, resource_id])


def _grant_of(field: str) -> tuple[str, str, str]:
    action, resource_type, resource_id = json.loads(field)
    return action, resource_type, resource_id


def _permission(user_id: str, grant: tuple[str, str, str], value: str) -> Permission:
    """The `Permission` of a stored grant (`{id}:{created_at}`)."""
    number, created = value.split(":", 1)
    action, resource_type, resource_id = grant
    return Permission.model_construct(
        id=int(number),
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        created_at=from_micros(created),
    )
