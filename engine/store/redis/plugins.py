"""Installed plugin versions on Redis: one hash per version, one sorted set listing them.

Keys (ADR 024): `plugin:{len}:{name}:{version}` (the `Plugin` record) and `plugins` (members `["name","version"]`
in compact JSON, all scored 0). An installation has tens of plugin versions, so a listing reads the set whole.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Plugin
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, dump_json

# KEYS: the record, the listing. ARGV: the listing's member, then field pairs to set (none: delete the plugin).
# Returns the record's fields after the change, or 0 when there is no such plugin version.
_CHANGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {}
end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
return redis.call('HGETALL', KEYS[1])
"""


class RedisPlugins(RedisRepository):
    """Installed plugin versions on Redis; implements `engine.store.protocol.Plugins`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(Plugin)
        self._change = self.script(_CHANGE)

    def add(self, name: str, version: str, manifest: Mapping[str, Any], *, enabled: bool = True) -> Plugin:
        """Record an installed plugin version; installing the same version again replaces its manifest."""
        row = Plugin(
            name=name,
            version=version,
            manifest=json.loads(json.dumps(dict(manifest))),
            enabled=enabled,
            installed_at=utcnow(),
        )
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: the record and its listing together
        pipe.hset(self._key(name, version), mapping=self.codec.dump(row))
        pipe.zadd(self.keys("plugins"), {_member(name, version): 0})
        pipe.execute()
        return row

    def get(self, name: str, version: str) -> Plugin:
        """One installed plugin version; raises `NotFoundError`."""
        stored = self.client.hgetall(self._key(name, version))
        if not stored:
            raise NotFoundError(
                f"plugin {name!r} version {version!r} is not installed; list plugins to see versions"
            )
        return self.codec.load(stored)

    def list(self, *, name: str | None = None, enabled_only: bool = False) -> builtins.list[Plugin]:
        """Installed plugin versions, by name then version."""
        members = sorted(
            tuple(json.loads(member)) for member in self.client.zrange(self.keys("plugins"), 0, -1)
        )
        wanted = [(n, v) for n, v in members if name is None or n == name]
        pipe = self.client.pipeline(transaction=False)
        for n, v in wanted:
            pipe.hgetall(self._key(n, v))
        rows = [self.codec.load(stored) for stored in pipe.execute() if stored]
        return [row for row in rows if row.enabled or not enabled_only]

    def set_enabled(self, name: str, version: str, enabled: bool) -> Plugin:
        """Enable or disable an installed plugin version without removing it."""
        changed = self._run(name, version, {"enabled": enabled})
        if not changed:
            raise NotFoundError(f"plugin {name!r} version {version!r} is not installed")
        return self.codec.load(as_dict(changed))

    def remove(self, name: str, version: str) -> None:
        """Forget an installed plugin version; raises `NotFoundError` if it was not installed."""
        if self._run(name, version, None) == 0:
            raise NotFoundError(f"plugin {name!r} version {version!r} is not installed; nothing to remove")

    def _run(self, name: str, version: str, changes: Mapping[str, Any] | None) -> Any:
        fields = flat(self.codec.fields(changes)) if changes else []
        return self._change(
            keys=[self._key(name, version), self.keys("plugins")], args=[_member(name, version), *fields]
        )

    def _key(self, name: str, version: str) -> str:
        return self.keys("plugin", self.keys.pair(name, version))


def _member(name: str, version: str) -> str:
    return dump_json([name, version])
