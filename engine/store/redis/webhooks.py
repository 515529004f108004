"""Outbound webhooks on Redis: subscriptions (signing secret sealed, event cursor) and their deliveries.

Keys (ADR 024): `webhook:{id}` (the `WebhookSubscription` record), `webhooks` and `webhooks:owner:{owner}` (ids
scored by creation time), `webhook:{id}:seen` (a set: the events, `{seq}:{run}`, the webhook has a delivery of:
at most one each), `webhook:{id}:deliveries` (delivery ids by creation time), `webhook:{id}:scheduled` (its
scheduled deliveries by next attempt), `webhook-delivery:{id}` (the `WebhookDelivery` record), `webhook-due`
(the scheduled, unleased deliveries of enabled webhooks by next attempt: what a claim reads; disabling a webhook
takes its deliveries out, enabling puts them back) and `webhook-leased` (claimed deliveries by lease end: a claim
first puts those whose lease ran out back in `webhook-due`, so it never walks over deliveries being sent). The
events a webhook may be given are found in `notified`, the index of the events of `NOTIFIED_EVENT_TYPES` that
`engine.store.redis.events` keeps.

Every change is one Lua script, so a delivery's record and its places in the indexes never disagree, an event is
recorded once per webhook however many workers offer it, and of several workers claiming at once each delivery
goes to one (its lease is set in the script that picked it).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import NOTIFIED_EVENT_TYPES, DeliveryStatus, WebhookDelivery, WebhookSubscription
from engine.store.redis.base import RedisRepository, as_dict, flat
from engine.store.redis.codec import Codec, from_micros, to_micros
from engine.store.redis.events import _event
from engine.store.redis.visibility import RunVisibility
from engine.store.shares import Audience
from engine.store.webhooks import (
    UPDATABLE,
    NewDelivery,
    PendingEvent,
    WebhookCreation,
    _missing,
    delivery_fields,
)

#: Index entries read per round trip while looking for a webhook's new events.
_CHUNK = 500

# KEYS: the record, every webhook, the owner's. ARGV: id, creation score, then the record's field pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# KEYS: the record, its scheduled deliveries, the due index. ARGV: '1' to remove the workflow filter, then field
# pairs. A change of `enabled` moves the webhook's scheduled deliveries into or out of the due index.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local was = redis.call('HGET', KEYS[1], 'enabled')
if ARGV[1] == '1' then redis.call('HDEL', KEYS[1], 'workflow_id') end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local now = redis.call('HGET', KEYS[1], 'enabled')
if was ~= now then
  local scheduled = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #scheduled, 2 do
    if now == 'true' then redis.call('ZADD', KEYS[3], scheduled[i + 1], scheduled[i])
    else redis.call('ZREM', KEYS[3], scheduled[i]) end
  end
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: the record, every webhook, its deliveries, its scheduled ones, its seen events, the due index, the leased
# index. ARGV: id, prefix.
_DELETE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. ':webhooks:owner:' .. owner, ARGV[1])
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('DEL', ARGV[2] .. ':webhook-delivery:' .. id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[7], id)
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
return 1
"""

# KEYS: the record, its seen events, its deliveries, its scheduled ones, the due index. ARGV: prefix, now, the
# cursor to move to ('' for none), then per delivery: id, event ('' for a ping), how many field pairs, the pairs.
# A delivery whose id or event is recorded already is skipped; the cursor only moves forward.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local enabled = redis.call('HGET', KEYS[1], 'enabled') == 'true'
local i = 4
while i <= #ARGV do
  local id, event, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local key = ARGV[1] .. ':webhook-delivery:' .. id
  if redis.call('EXISTS', key) == 0 and (event == '' or redis.call('SISMEMBER', KEYS[2], event) == 0) then
    local fields = {}
    for j = i + 3, i + 2 + 2 * count do fields[#fields + 1] = ARGV[j] end
    redis.call('HSET', key, unpack(fields))
    if event ~= '' then redis.call('SADD', KEYS[2], event) end
    redis.call('ZADD', KEYS[3], ARGV[2], id)
    redis.call('ZADD', KEYS[4], ARGV[2], id)
    if enabled then redis.call('ZADD', KEYS[5], ARGV[2], id) end
  end
  i = i + 3 + 2 * count
end
if ARGV[3] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'cursor_at')) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'cursor_at', ARGV[3])
end
return 1
"""

# KEYS: the due index, the leased index. ARGV: prefix, now, lease end, limit. First puts the deliveries whose lease
# ran out back in the due index (at their next attempt, if their webhook is enabled), then takes due deliveries in
# order of their next attempt, moving each from the due index to the leased one.
_CLAIM = """
local now, taken, limit = tonumber(ARGV[2]), {}, tonumber(ARGV[4])
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], '-inf', '(' .. ARGV[2], 'BYSCORE')) do
  redis.call('ZREM', KEYS[2], id)
  local d = redis.call('HMGET', ARGV[1] .. ':webhook-delivery:' .. id, 'status', 'next_attempt_at', 'subscription_id')
  if d[1] == 'scheduled' and d[2] and redis.call('HGET', ARGV[1] .. ':webhook:' .. d[3], 'enabled') == 'true' then
    redis.call('ZADD', KEYS[1], d[2], id)
  end
end
while #taken < limit do
  local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, limit - #taken)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local key = ARGV[1] .. ':webhook-delivery:' .. id
    local d = redis.call('HMGET', key, 'status', 'lease_until')
    redis.call('ZREM', KEYS[1], id)
    if d[1] == 'scheduled' and (not d[2] or tonumber(d[2]) < now) then
      redis.call('HSET', key, 'lease_until', ARGV[3])
      redis.call('ZADD', KEYS[2], ARGV[3], id)
      taken[#taken + 1] = id
    elseif d[1] == 'scheduled' then
      redis.call('ZADD', KEYS[2], d[2], id)  -- still leased (its webhook was enabled again meanwhile)
    end
  end
end
return taken
"""


# KEYS: the delivery. ARGV: id, prefix, new status, next attempt ('' for none), 'reset' (attempts to 0) or 'count'
# (one more), how many fields to remove, their names, then field pairs to set. Releases the lease, and keeps the
# delivery's places in its webhook's scheduled index and the due index in step with its status.
_RECORD = """
local sub = redis.call('HGET', KEYS[1], 'subscription_id')
if not sub then return false end
if ARGV[5] == 'reset' then redis.call('HSET', KEYS[1], 'attempts', '0')
else redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
local gone = tonumber(ARGV[6])
for i = 7, 6 + gone do redis.call('HDEL', KEYS[1], ARGV[i]) end
local fields = {}
for i = 7 + gone, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local webhook = ARGV[2] .. ':webhook:' .. sub
local due = ARGV[2] .. ':webhook-due'
redis.call('ZREM', ARGV[2] .. ':webhook-leased', ARGV[1])
if ARGV[3] == 'scheduled' and ARGV[4] ~= '' then
  redis.call('ZADD', webhook .. ':scheduled', ARGV[4], ARGV[1])
  if redis.call('HGET', webhook, 'enabled') == 'true' then redis.call('ZADD', due, ARGV[4], ARGV[1]) end
else
  redis.call('ZREM', webhook .. ':scheduled', ARGV[1])
  redis.call('ZREM', due, ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""


# KEYS: the notified index, the webhook's seen events. ARGV: prefix, lowest score ('(' exclusive), offset, count,
# workflow ('' for any), '\n'-framed wanted types. Reads `count` entries of the index from `offset`; answers how
# many it read and the last one's time, then for each entry of a wanted type, not seen, of a run that exists (and
# is of the workflow): its time, run, seq, the run's owner and workflow ('' for none).
_SCAN = """
local entries = redis.call('ZRANGE', KEYS[1], ARGV[2], '+inf', 'BYSCORE', 'LIMIT', ARGV[3], ARGV[4], 'WITHSCORES')
local out = {#entries / 2, entries[#entries] or ''}
for i = 1, #entries, 2 do
  local seq, kind, run = string.match(entries[i], '^(%d+):([^:]*):(.*)$')
  if string.find(ARGV[6], '\\n' .. kind .. '\\n', 1, true)
      and redis.call('SISMEMBER', KEYS[2], seq .. ':' .. run) == 0 then
    local r = redis.call('HMGET', ARGV[1] .. ':run:' .. run, 'owner', 'workflow_id')
    if r[1] and (ARGV[5] == '' or r[2] == ARGV[5]) then
      for _, value in ipairs({entries[i + 1], run, seq, r[1], r[2] or ''}) do out[#out + 1] = value end
    end
  end
end
return out
"""


def _no_delivery(delivery_id: str) -> NotFoundError:
    return NotFoundError(f"webhook delivery {delivery_id!r} does not exist (its webhook was deleted?)")


class RedisWebhooks(WebhookCreation, RedisRepository):
    """Webhook subscriptions and their deliveries on Redis; implements `engine.store.protocol.Webhooks`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.codec = Codec(WebhookSubscription)
        self.deliveries_codec = Codec(WebhookDelivery)
        self._create = self.script(_CREATE)
        self._update = self.script(_UPDATE)
        self._delete = self.script(_DELETE)
        self._enqueue = self.script(_ENQUEUE)
        self._claim = self.script(_CLAIM)
        self._record = self.script(_RECORD)
        self._scan = self.script(_SCAN)

    def _store_new(self, row: WebhookSubscription) -> WebhookSubscription:
        k = self.keys
        created = self._create(
            keys=[k("webhook", row.id), k("webhooks"), k("webhooks", "owner", row.owner)],
            args=[row.id, to_micros(row.created_at), *flat(self.codec.dump(row))],
        )
        if not created:
            raise ValueError(f"webhook {row.id!r} exists already; create it without an id to get a new one")
        return row

    def get(self, subscription_id: str) -> WebhookSubscription:
        """One subscription; `NotFoundError` naming it."""
        stored = self.client.hgetall(self.keys("webhook", subscription_id))
        if not stored:
            raise _missing(subscription_id)
        return self.codec.load(stored)

    def list(
        self, *, owner: str | None = None, enabled_only: bool = False
    ) -> builtins.list[WebhookSubscription]:
        """Subscriptions of one owner (every owner's with None), oldest first (then by id)."""
        index = self.keys("webhooks") if owner is None else self.keys("webhooks", "owner", owner)
        ids = self.client.zrange(index, 0, -1)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for subscription_id in ids:
            pipe.hgetall(self.keys("webhook", subscription_id))
        rows = [self.codec.load(stored) for stored in pipe.execute() if stored]
        return [row for row in rows if row.enabled or not enabled_only]

    def update(self, subscription_id: str, changes: Mapping[str, Any]) -> WebhookSubscription:
        """Change some of `UPDATABLE` (a `workflow_id` of None removes the filter); `NotFoundError`, or
        `ValueError` naming a field that cannot change."""
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise ValueError(f"webhook fields {unknown} cannot be changed; changeable: {sorted(UPDATABLE)}")
        values = {name: builtins.list(v) if name == "event_types" else v for name, v in changes.items()}
        values["updated_at"] = utcnow()
        k = self.keys
        stored = self._update(
            keys=[
                k("webhook", subscription_id),
                k("webhook", subscription_id, "scheduled"),
                k("webhook-due"),
            ],
            args=[
                "1" if "workflow_id" in values and values["workflow_id"] is None else "0",
                *flat(self.codec.fields(values)),
            ],
        )
        if stored is None:
            raise _missing(subscription_id)
        return self.codec.load(as_dict(stored))

    def delete(self, subscription_id: str) -> None:
        """Remove a subscription and its deliveries; `NotFoundError` when there is none."""
        k = self.keys
        keys = [k("webhook", subscription_id), k("webhooks")]
        keys += [k("webhook", subscription_id, part) for part in ("deliveries", "scheduled", "seen")]
        keys += [k("webhook-due"), k("webhook-leased")]
        if not self._delete(keys=keys, args=[subscription_id, k.prefix]):
            raise _missing(subscription_id)

    def new_events(
        self, subscription: WebhookSubscription, audience: Audience, *, since: datetime, limit: int = 500
    ) -> builtins.list[PendingEvent]:
        """Events created after `since` that the subscription wants (its types, its workflow), of runs the
        `audience` may see, and that it has no delivery of yet; oldest first (then by run and number), at most
        `limit`. Reads the `notified` index forward from `since` and checks each entry."""
        wanted = {str(t) for t in subscription.event_types if t in NOTIFIED_EVENT_TYPES}
        if not wanted or limit < 1:
            return []
        k = self.keys
        framed = "\n" + "\n".join(sorted(wanted)) + "\n"
        visible = RunVisibility(self, audience)
        found: builtins.list[tuple[int, str, int, str | None]] = []
        offset = 0
        while True:
            reply = self.reply(
                self._scan(
                    keys=[k("notified"), k("webhook", subscription.id, "seen")],
                    args=[
                        k.prefix,
                        f"({to_micros(since)}",
                        offset,
                        _CHUNK,
                        subscription.workflow_id or "",
                        framed,
                    ],
                )
            )
            read, last, rows = int(reply[0]), reply[1], reply[2:]
            offset += read
            entries = [
                (int(float(at)), run_id, int(seq), owner, workflow_id or None)
                for at, run_id, seq, owner, workflow_id in zip(*[iter(rows)] * 5, strict=True)
            ]
            shown = visible.sees([(owner, workflow_id) for _, _, _, owner, workflow_id in entries])
            found += [
                (at, run_id, seq, wf)
                for (at, run_id, seq, _, wf), ok in zip(entries, shown, strict=True)
                if ok
            ]
            if read < _CHUNK:
                break
            # Once `limit` are found, read on only while entries may still tie with the limit-th's time.
            if len(found) >= limit and int(float(last)) > sorted(found)[limit - 1][0]:
                break
        found = sorted(found)[:limit]
        pipe = self.client.pipeline(transaction=False)
        for _, run_id, seq, _ in found:
            pipe.xrange(k("run", run_id, "events"), f"{seq}-0", f"{seq}-0")
        pending = []
        for (at, run_id, _, workflow_id), entries in zip(found, pipe.execute(), strict=True):
            if entries:
                entry_id, fields = entries[0]
                pending.append(PendingEvent(_event(run_id, entry_id, fields), workflow_id, from_micros(at)))
        return pending

    def enqueue(
        self, subscription_id: str, deliveries: Sequence[NewDelivery], *, cursor_at: datetime | None = None
    ) -> int:
        """Record deliveries due now (an event already recorded for the subscription is skipped: at most one
        delivery per event and webhook) and move the cursor forward to `cursor_at`, in one script. Returns how
        many were offered; `NotFoundError` when the webhook was deleted meanwhile."""
        now = utcnow()
        args: builtins.list[Any] = [
            self.keys.prefix,
            to_micros(now),
            "" if cursor_at is None else to_micros(cursor_at),
        ]
        for d in deliveries:
            # Fields, not a `WebhookDelivery`: building a table model (~0.15 ms) took half of a batch's time.
            fields = self.deliveries_codec.fields(delivery_fields(subscription_id, d, now))
            event = "" if d.run_id is None or d.seq is None else _member(d.run_id, d.seq)
            args += [fields["id"], event, len(fields), *flat(fields)]
        k = self.keys
        keys = [k("webhook", subscription_id)]
        keys += [k("webhook", subscription_id, part) for part in ("seen", "deliveries", "scheduled")]
        if not self._enqueue(keys=[*keys, k("webhook-due")], args=args):
            raise _missing(subscription_id)
        return len(deliveries)

    def claim_due(self, *, limit: int = 20, lease_s: float = 60.0) -> builtins.list[WebhookDelivery]:
        """Take up to `limit` scheduled deliveries of enabled webhooks whose time has come, holding each for
        `lease_s` (a worker that dies mid-send leaves it to be taken again after that). One script picks and
        leases them, so concurrent workers never take the same delivery; it reads about as many deliveries as it
        takes, plus the leases that ran out."""
        if limit < 1:
            return []
        now = utcnow()
        lease_until = to_micros(now + timedelta(seconds=lease_s))
        ids = self.reply(
            self._claim(
                keys=[self.keys("webhook-due"), self.keys("webhook-leased")],
                args=[self.keys.prefix, to_micros(now), lease_until, limit],
            )
        )
        rows = self._load_deliveries([str(i) for i in ids if i])
        return sorted(rows, key=lambda row: row.next_attempt_at or now)

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str = "",
        next_attempt_at: datetime | None = None,
    ) -> WebhookDelivery:
        """Record one attempt: one more attempt, its HTTP status (None without an answer) and error, the new
        state and, for `SCHEDULED`, when to try again; the lease is released."""
        now = utcnow()
        scheduled = status is DeliveryStatus.SCHEDULED
        values: dict[str, Any] = {
            "status": status.value,
            "last_status_code": status_code,
            "last_error": error,
            "next_attempt_at": next_attempt_at if scheduled else None,
            "lease_until": None,
            "updated_at": now,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        stored = self._change(delivery_id, values, attempts="count")
        if stored is None:
            raise _no_delivery(delivery_id)
        return stored

    def deliveries(
        self, subscription_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> builtins.list[WebhookDelivery]:
        """A subscription's deliveries, newest first (then by id, descending; `status` DEAD: its dead letters)."""
        index = self.keys("webhook", subscription_id, "deliveries")
        found: builtins.list[WebhookDelivery] = []
        offset = 0
        while len(found) < limit:
            ids = self.client.zrange(index, offset, offset + _CHUNK - 1, desc=True)
            offset += len(ids)
            found += [
                row for row in self._load_deliveries(ids) if status is None or row.status == status.value
            ]
            if len(ids) < _CHUNK:
                break
        return found[: max(limit, 0)]

    def get_delivery(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """One delivery of a subscription; `NotFoundError` naming it."""
        stored = self.client.hgetall(self.keys("webhook-delivery", delivery_id))
        if not stored or stored.get("subscription_id") != subscription_id:
            raise NotFoundError(
                f"delivery {delivery_id!r} of webhook {subscription_id!r} does not exist; "
                f"GET /v1/webhooks/{subscription_id}/deliveries lists them"
            )
        return self.deliveries_codec.load(stored)

    def redeliver(self, subscription_id: str, delivery_id: str) -> WebhookDelivery:
        """Schedule a delivery again, now, with a fresh count of attempts (a dead letter comes back to life)."""
        self.get_delivery(subscription_id, delivery_id)
        now = utcnow()
        values = {
            "status": DeliveryStatus.SCHEDULED.value,
            "next_attempt_at": now,
            "lease_until": None,
            "updated_at": now,
            "last_error": "",
        }
        stored = self._change(delivery_id, values, attempts="reset")
        if stored is None:
            raise _missing(subscription_id)
        return stored

    def _change(self, delivery_id: str, values: dict[str, Any], *, attempts: str) -> WebhookDelivery | None:
        """Set `values` on a delivery (None ones removed) and count or reset its attempts; None when missing."""
        codec = self.deliveries_codec
        gone = [name for name, value in values.items() if value is None]
        next_at = values.get("next_attempt_at")
        stored = self._record(
            keys=[self.keys("webhook-delivery", delivery_id)],
            args=[
                delivery_id,
                self.keys.prefix,
                values["status"],
                "" if next_at is None else to_micros(next_at),
                attempts,
                len(gone),
                *gone,
                *flat(codec.fields(values)),
            ],
        )
        return None if stored is None else codec.load(as_dict(stored))

    def _load_deliveries(self, ids: builtins.list[str]) -> builtins.list[WebhookDelivery]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(self.keys("webhook-delivery", delivery_id))
        return [self.deliveries_codec.load(stored) for stored in pipe.execute() if stored]


def _member(run_id: str, seq: int) -> str:
    """How an event is named in a webhook's seen set: `{seq}:{run}`."""
    return f"{seq}:{run_id}"
