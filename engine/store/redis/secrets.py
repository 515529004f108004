"""Sealed secrets on Redis: one hash per secret, versions counted in it (values are sealed and opened by
`engine.secrets`, never here).

Keys (ADR 024): `secret:{len}:{owner}:{name}` (the `Secret` record), `secret-id:{id}` (the record's key, for
`reseal` by id), `secrets` (members `["owner","name"]` in compact JSON, scored 0). Every change is one Lua script,
so two concurrent puts of one name land one after the other as versions.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Secret
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, dump_json

# KEYS: the record, its id key, the listing. ARGV: member, new id, description given ('1'/'0'), then the fields of
# a new record as pairs. A present record keeps id, owner, name, created_*; gets version + 1 and the rest.
_PUT = """
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local keep = {id = true, owner = true, name = true, created_at = true, created_by = true, version = true}
  if ARGV[3] == '0' then keep.description = true end
  local changed = {}
  for i = 1, #fields, 2 do
    if not keep[fields[i]] then changed[#changed + 1] = fields[i]; changed[#changed + 1] = fields[i + 1] end
  end
  redis.call('HSET', KEYS[1], unpack(changed))
  redis.call('HINCRBY', KEYS[1], 'version', 1)
else
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('SET', KEYS[2], KEYS[1])
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: the record, the listing. ARGV: member, the key prefix.
_DELETE = """
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 0 end
redis.call('DEL', KEYS[1], ARGV[2] .. ':secret-id:' .. id)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: the id key. ARGV: version, then field pairs.
_RESEAL = """
local key = redis.call('GET', KEYS[1])
if not key or redis.call('HGET', key, 'version') ~= ARGV[1] then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
return 1
"""


class RedisSecrets(RedisRepository):
    """Sealed secrets of owners on Redis; implements `engine.store.protocol.Secrets`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(Secret)
        self._put = self.script(_PUT)
        self._delete = self.script(_DELETE)
        self._reseal = self.script(_RESEAL)

    def put(
        self,
        owner: str,
        name: str,
        *,
        ciphertext: str,
        wrapped_key: str,
        key_id: str,
        description: str | None = None,
        actor: str = "",
    ) -> Secret:
        """Store a new secret (version 1) or a new value of an existing one (its version + 1); `description`
        None keeps the stored one."""
        now = utcnow()
        row = Secret(
            id=new_id(),
            owner=owner,
            name=name,
            description=description or "",
            ciphertext=ciphertext,
            wrapped_key=wrapped_key,
            key_id=key_id,
            version=1,
            created_at=now,
            updated_at=now,
            created_by=actor,
            updated_by=actor,
        )
        stored = self._put(
            keys=[self._key(owner, name), self.keys("secret-id", row.id), self.keys("secrets")],
            args=[
                _member(owner, name),
                row.id,
                "0" if description is None else "1",
                *flat(self.codec.dump(row)),
            ],
        )
        return self.codec.load(as_dict(stored))

    def get(self, owner: str, name: str) -> Secret:
        """One sealed secret; raises `NotFoundError` naming it."""
        stored = self.client.hgetall(self._key(owner, name))
        if not stored:
            raise NotFoundError(
                f"secret {name!r} does not exist for {owner!r}; create it with POST /v1/secrets or "
                "`rayweave secrets set`"
            )
        return self.codec.load(stored)

    def list(self, *, owner: str | None = None) -> builtins.list[Secret]:
        """Sealed secrets of one owner (every owner with None), by owner and name."""
        members = sorted(tuple(json.loads(m)) for m in self.client.zrange(self.keys("secrets"), 0, -1))
        pipe = self.client.pipeline(transaction=False)
        for o, n in members:
            if owner is None or o == owner:
                pipe.hgetall(self._key(o, n))
        return [self.codec.load(stored) for stored in pipe.execute() if stored]

    def delete(self, owner: str, name: str) -> None:
        """Remove a secret; raises `NotFoundError` when there is none."""
        keys = [self._key(owner, name), self.keys("secrets")]
        if not self._delete(keys=keys, args=[_member(owner, name), self.keys.prefix]):
            raise NotFoundError(f"secret {name!r} does not exist for {owner!r}")

    def reseal(self, secret_id: str, *, version: int, ciphertext: str, wrapped_key: str, key_id: str) -> bool:
        """Replace the sealed form of one version of a secret (a key rotation); False when it changed or
        vanished since it was read."""
        fields = self.codec.fields({"ciphertext": ciphertext, "wrapped_key": wrapped_key, "key_id": key_id})
        return bool(self._reseal(keys=[self.keys("secret-id", secret_id)], args=[version, *flat(fields)]))

    def _key(self, owner: str, name: str) -> str:
        return self.keys("secret", self.keys.pair(owner, name))


def _member(owner: str, name: str) -> str:
    return dump_json([owner, name])
