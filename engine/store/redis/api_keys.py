"""API keys on Redis: only the public prefix and the SHA-256 of each secret are stored, as in the SQL store
(`engine.store.api_keys`, whose checks and messages this module shares).

Keys (ADR 024): `apikey:{id}` (the `ApiKey` record), `apikey-prefix:{prefix}` (its id: the lookup of a presented
key), `apikeys` and `apikeys:user:{user}` (ids scored by creation time), `apikeys:admin` (a set: the keys with an
admin scope that are not revoked, which the last-admin rules read; expiry and the user's state are checked when
it is read). `verify` is one read-only script (key and user in one round trip) and writes `last_used_at` at most
once per `LAST_USED_RESOLUTION`; revocation and rotation are one script each, so the last-admin check and the
change are atomic.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from engine.store.api_keys import (
    check_presented,
    grants_admin,
    last_admin_key_error,
    new_key,
    prefix_of,
    rotated_expiry,
    rotated_key_error,
    stale_last_used,
)
from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import ApiKey, User
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, to_micros

#: Lua: `active_admins(prefix, now)`, the keys acting as admin at `now` as `{key id, user id}` pairs: an admin
#: scope, not revoked (members of `apikeys:admin`), not expired, their user enabled.
ACTIVE_ADMINS = """
local function active_admins(prefix, now)
  local found = {}
  for _, id in ipairs(redis.call('SMEMBERS', prefix .. ':apikeys:admin')) do
    local key = redis.call('HMGET', prefix .. ':apikey:' .. id, 'user_id', 'revoked_at', 'expires_at')
    if key[1] and not key[2] and (not key[3] or tonumber(key[3]) > now) then
      if redis.call('HGET', prefix .. ':user:' .. key[1], 'disabled') == 'false' then
        found[#found + 1] = {id, key[1]}
      end
    end
  end
  return found
end
"""

# KEYS: the user, the prefix key, the record, the listing, the user's listing, the admin set. ARGV: id, score,
# admin ('1'/'0'), then the record's field pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'user' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX') == false then return 'prefix' end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[6], ARGV[1]) end
return 'ok'
"""

# KEYS: the prefix key. ARGV: prefix. The key's record and its user's, or nothing.
_LOOKUP = """
local id = redis.call('GET', KEYS[1])
if not id then return {} end
local key = redis.call('HGETALL', ARGV[1] .. ':apikey:' .. id)
if #key == 0 then return {} end
local user = redis.call('HGET', ARGV[1] .. ':apikey:' .. id, 'user_id')
return {key, redis.call('HGETALL', ARGV[1] .. ':user:' .. user)}
"""

# KEYS: the record. ARGV: last_used_at. Never recreates a record that is gone.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
return 1
"""

# KEYS: the record, the admin set. ARGV: prefix, id, now, keep an admin ('1'/'0').
_REVOKE = (
    ACTIVE_ADMINS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local now = tonumber(ARGV[3])
if ARGV[4] == '1' and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then
  local admins = active_admins(ARGV[1], now)
  if #admins == 1 and admins[1][1] == ARGV[2] then return {'last', redis.call('HGETALL', KEYS[1])} end
end
local revoked = redis.call('HGET', KEYS[1], 'revoked_at')
if not revoked or tonumber(revoked) > now then redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3]) end
redis.call('SREM', KEYS[2], ARGV[2])
return {'ok', redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: the old record, the admin set, the new prefix key, the new record, the listing, the user's listing.
# ARGV: old id, new id, score, the old key's revoked_at, new is admin ('1'/'0'), then the new record's pairs.
_ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return {'revoked', redis.call('HGETALL', KEYS[1])} end
if redis.call('SET', KEYS[3], ARGV[2], 'NX') == false then return {'prefix'} end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[4], unpack(fields))
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[2])
if ARGV[5] == '1' then redis.call('SADD', KEYS[2], ARGV[2]) end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[4])
redis.call('SREM', KEYS[2], ARGV[1])
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[4])}
"""

#: New keys drawn when a freshly drawn prefix is taken (48 random bits: never, in practice).
_TRIES = 3


class RedisApiKeys(RedisRepository):
    """API keys of users on Redis; implements `engine.store.protocol.ApiKeys` as `engine.store.api_keys`
    does."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(ApiKey)
        self.users = Codec(User)
        self._create = self.script(_CREATE)
        self._lookup = self.script(_LOOKUP)
        self._touch = self.script(_TOUCH)
        self._revoke = self.script(_REVOKE)
        self._rotate = self.script(_ROTATE)

    def create(
        self,
        user_id: str,
        *,
        name: str = "",
        scopes: Collection[str] = (),
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key for a user; returns the record and the secret key, which cannot be recovered later."""
        for _ in range(_TRIES):
            key, secret = new_key(user_id, name=name, scopes=scopes, expires_at=expires_at)
            k = self.keys
            outcome = self._create(
                keys=[
                    k("user", user_id),
                    k("apikey-prefix", key.prefix),
                    k("apikey", key.id),
                    k("apikeys"),
                    k("apikeys", "user", user_id),
                    k("apikeys", "admin"),
                ],
                args=[
                    key.id,
                    to_micros(key.created_at),
                    "1" if grants_admin(key.scopes) else "0",
                    *flat(self.codec.dump(key)),
                ],
            )
            if outcome == "user":
                raise NotFoundError(f"user {user_id!r} does not exist; create the user before its API key")
            if outcome == "ok":
                return key, secret
        raise RuntimeError(f"no free API key prefix in {_TRIES} draws; try again")

    def verify(self, secret: str, *, now: datetime | None = None) -> ApiKey:
        """The key record for a presented secret; raises `InvalidApiKeyError` if it is unknown, malformed,
        revoked, expired or belongs to a disabled user. The message never echoes the secret."""
        return self.verify_with_user(secret, now=now)[0]

    def verify_with_user(self, secret: str, *, now: datetime | None = None) -> tuple[ApiKey, User]:
        """The key record for a presented secret and its user, read by one script (one round trip); refused as
        `verify` refuses. Records `last_used_at` at most once per `LAST_USED_RESOLUTION`, as the SQL store."""
        now = now or utcnow()
        prefix = prefix_of(secret)
        found = self.reply(self._lookup(keys=[self.keys("apikey-prefix", prefix)], args=[self.keys.prefix]))
        stored = as_dict(found[0]) if len(found) == 2 and found[0] else {}
        key = self.codec.load(stored) if stored else None
        user = self.users.load(as_dict(found[1])) if len(found) == 2 and found[1] else None
        key, user = check_presented(key, user, secret, now)
        if stale_last_used(key, now):
            used = self.codec.field("last_used_at", now)
            self._touch(keys=[self.keys("apikey", key.id)], args=[used])
            key = self.codec.load({**stored, "last_used_at": used})
        return key, user

    def get(self, key_id: str) -> ApiKey:
        """One key record by id; raises `NotFoundError`."""
        stored = self.client.hgetall(self.keys("apikey", key_id))
        if not stored:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        return self.codec.load(stored)

    def list(self, *, user_id: str | None = None, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """Key records (never secrets), newest first. A rotated key in its grace period is listed (it still
        works, and shows when it stops in `revoked_at`) unless revoked keys are asked for too."""
        index = self.keys("apikeys") if user_id is None else self.keys("apikeys", "user", user_id)
        keys = self._load_each(self.client.zrange(index, 0, -1, desc=True))
        if include_revoked:
            return keys
        now = utcnow()
        return [key for key in keys if key.revoked_at is None or key.revoked_at > now]

    def active_admin_keys(self, *, now: datetime | None = None) -> builtins.list[ApiKey]:
        """The keys that act as admin now: an admin scope, not revoked, not expired, their user enabled (oldest
        first)."""
        now = now or utcnow()
        keys = self._load_each(builtins.list(self.client.smembers(self.keys("apikeys", "admin"))))
        keys = [
            key
            for key in keys
            if key.revoked_at is None
            and (key.expires_at is None or key.expires_at > now)
            and grants_admin(key.scopes)
        ]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self.keys("user", key.user_id), "disabled")
        enabled = [key for key, disabled in zip(keys, pipe.execute(), strict=True) if disabled == "false"]
        return sorted(enabled, key=lambda key: (key.created_at, key.id))

    def revoke(self, key_id: str, *, keep_an_admin: bool = True) -> ApiKey:
        """Revoke a key (it stops verifying at once); revoking twice keeps the first revocation time, and
        revoking a rotated key in its grace period ends the grace now. With `keep_an_admin`, revoking the last
        active admin key raises `LastAdminKeyError`; the check and the revocation are one script."""
        outcome = self.reply(
            self._revoke(
                keys=[self.keys("apikey", key_id), self.keys("apikeys", "admin")],
                args=[self.keys.prefix, key_id, to_micros(utcnow()), "1" if keep_an_admin else "0"],
            )
        )
        if outcome[0] == "missing":
            raise NotFoundError(f"API key {key_id!r} does not exist; nothing to revoke")
        key = self.codec.load(as_dict(outcome[1]))
        if outcome[0] == "last":
            raise last_admin_key_error(key)
        return key

    def rotate(
        self,
        key_id: str,
        *,
        grace_s: float = 0.0,
        expires_at: datetime | None = None,
        keep_expiry: bool = True,
    ) -> tuple[ApiKey, ApiKey, str]:
        """Replace a key by a new secret of the same user, name and scopes in one script; the old key is revoked
        `grace_s` seconds from now (0: at once). Returns the old record, the new one and its secret; a revoked
        or already rotated key raises `InvalidApiKeyError` (as `engine.store.api_keys` documents)."""
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        now = utcnow()
        old = self.client.hgetall(self.keys("apikey", key_id))
        if not old:
            raise NotFoundError(f"API key {key_id!r} does not exist; nothing to rotate")
        current = self.codec.load(old)
        if current.revoked_at is not None:
            raise rotated_key_error(current)
        expires_at = rotated_expiry(current, now, expires_at, keep_expiry)
        revoked_at = now + timedelta(seconds=grace_s)
        for _ in range(_TRIES):
            new, secret = new_key(
                current.user_id, name=current.name, scopes=current.scopes, expires_at=expires_at
            )
            k = self.keys
            outcome = self.reply(
                self._rotate(
                    keys=[
                        k("apikey", key_id),
                        k("apikeys", "admin"),
                        k("apikey-prefix", new.prefix),
                        k("apikey", new.id),
                        k("apikeys"),
                        k("apikeys", "user", current.user_id),
                    ],
                    args=[
                        key_id,
                        new.id,
                        to_micros(new.created_at),
                        to_micros(revoked_at),
                        "1" if grants_admin(new.scopes) else "0",
                        *flat(self.codec.dump(new)),
                    ],
                )
            )
            if outcome[0] == "missing":
                raise NotFoundError(f"API key {key_id!r} does not exist; nothing to rotate")
            if outcome[0] == "revoked":  # revoked or rotated since it was read
                raise rotated_key_error(self.codec.load(as_dict(outcome[1])))
            if outcome[0] == "ok":
                return self.codec.load(as_dict(outcome[1])), self.codec.load(as_dict(outcome[2])), secret
        raise RuntimeError(f"no free API key prefix in {_TRIES} draws; try again")

    def _load_each(self, ids: builtins.list[str]) -> builtins.list[ApiKey]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.keys("apikey", key_id))
        return [self.codec.load(stored) for stored in pipe.execute() if stored]
