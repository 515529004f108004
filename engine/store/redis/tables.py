"""The rows of a Redis store as the SQL tables hold them, for copying a whole installation between a Redis store
and a SQL one (`engine.store.transfer`, `rayweave db migrate --to URL`).

Each table is read in primary-key order, a page after a key at a time, with the columns of its SQL table, and
written with every key and index entry its repository keeps (so the copy is a working store, not a dump):
workflows, versions, runs, node runs and events through `store.bulk`; plugins, tenants, users, permissions, API
keys, workflow shares, secrets, the audit log, webhooks with their deliveries and shared (co-edited) documents with
their update logs here. Those smaller tables (an installation has thousands of users, not millions) are read
whole and sorted; the audit log is read by id from its `audit` index. Rewriting a row that is there already
changes nothing, so an interrupted copy is resumed by writing its last batch again.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.store.api_keys import grants_admin
from engine.store.bulk import BULK_KINDS
from engine.store.errors import MigrationError
from engine.store.models import (
    ApiKey,
    AuditEntry,
    DeliveryStatus,
    Plugin,
    Secret,
    Tenant,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from engine.store.redis.base import Keys
from engine.store.redis.codec import Codec, dump_json, from_micros, to_micros
from engine.store.roles import OWNER_ROLE

#: The hash of the copies into this store: table -> its ledger entry as JSON (`engine.store.transfer`).
LEDGER = "migration-ledger"

_RECORDS: dict[str, Any] = {
    "plugins": Plugin,
    "tenants": Tenant,
    "users": User,
    "api_keys": ApiKey,
    "audit_entries": AuditEntry,
    "secrets": Secret,
    "webhook_subscriptions": WebhookSubscription,
    "webhook_deliveries": WebhookDelivery,
}
_PAGE_CHUNK = 500


class RedisTables:
    """Pages of a Redis store's rows by table, writes of rows with their index entries, and the copy ledger."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.client: Any = store.client
        self.keys = Keys(store.prefix)
        self.codecs = {name: Codec(model) for name, model in _RECORDS.items()}

    @property
    def url(self) -> str:
        """The store's URL (password hidden), the copy's name for it in a ledger."""
        return str(self.store.url)

    # Reads.

    def page(self, table: sa.Table, after: Sequence[Any] | None, size: int) -> builtins.list[dict[str, Any]]:
        """At most `size` rows of `table` whose key follows `after`, in key order, with the table's columns."""
        name = table.name
        if name in BULK_KINDS:
            rows: builtins.list[dict[str, Any]] = self.store.bulk.page(name, after=after, limit=size)
            return rows
        if name == "webhook_deliveries":
            return self._deliveries(after, size)
        if name == "audit_entries":
            low = "-inf" if after is None else f"({int(after[0])}"
            ids = self.client.zrange(self.keys("audit"), low, "+inf", byscore=True, offset=0, num=size)
            return [
                self._load(name, stored) for stored in self._hgetall([self.keys("audit", i) for i in ids])
            ]
        keys = [c.name for c in table.primary_key.columns]
        everything = sorted(self._all(name), key=lambda row: tuple(row[k] for k in keys))
        start = 0
        if after is not None:
            bound = tuple(after)
            start = next(
                (n for n, row in enumerate(everything) if tuple(row[k] for k in keys) > bound),
                len(everything),
            )
        return everything[start : start + size]

    def count(self, table: sa.Table) -> int:
        """How many rows `table` has here."""
        name, k = table.name, self.keys
        if name == "workflows":
            return int(self.client.zcard(k("wfs", "ids")))
        if name == "runs":
            return int(self.client.zcard(k("runs", "ids")))
        if name == "audit_entries":
            return int(self.client.zcard(k("audit")))
        if name in ("workflow_versions", "node_runs", "events"):
            return self._count_per_parent(name)
        if name == "webhook_deliveries":
            return len(self._delivery_ids())
        return len(self._all(name))

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The ledger of copies into this store (table -> entry)."""
        stored = self.client.hgetall(self.keys(LEDGER))
        return {table: json.loads(entry) for table, entry in stored.items()}

    def _count_per_parent(self, name: str) -> int:
        k, total = self.keys, 0
        index = k("wfs", "ids") if name == "workflow_versions" else k("runs", "ids")
        low = "-"
        while ids := self.client.zrange(index, low, "+", bylex=True, offset=0, num=_PAGE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                if name == "workflow_versions":
                    pipe.hget(k("wf", i), "latest_version")
                elif name == "node_runs":
                    pipe.hlen(k("run", i, "attempts"))
                else:
                    pipe.xlen(k("run", i, "events"))
            total += sum(int(n or 0) for n in pipe.execute())
            low = f"({ids[-1]}"
        return total

    def _all(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every row of a small table (plugins, tenants, users, permissions, API keys, secrets)."""
        k = self.keys
        if name == "workflow_shares":
            return self._shares()
        if name.startswith("collab_"):
            return self._collab(name)
        if name == "permissions":
            users = self.client.zrange(k("users"), 0, -1)
            pipe = self.client.pipeline(transaction=False)
            for user_id in users:
                pipe.hgetall(k("perms", user_id))
            return [
                _permission_row(user_id, field, value)
                for user_id, grants in zip(users, pipe.execute(), strict=True)
                for field, value in grants.items()
            ]
        if name == "plugins":
            members = [json.loads(m) for m in self.client.zrange(k("plugins"), 0, -1)]
            record_keys = [k("plugin", k.pair(plugin, version)) for plugin, version in members]
        elif name == "secrets":
            members = [json.loads(m) for m in self.client.zrange(k("secrets"), 0, -1)]
            record_keys = [k("secret", k.pair(owner, secret)) for owner, secret in members]
        else:
            index, record = {
                "tenants": ("tenants", "tenant"),
                "users": ("users", "user"),
                "webhook_subscriptions": ("webhooks", "webhook"),
            }.get(name, ("apikeys", "apikey"))
            record_keys = [k(record, i) for i in self.client.zrange(k(index), 0, -1)]
        return [self._load(name, stored) for stored in self._hgetall(record_keys) if stored]

    def _delivery_ids(self) -> builtins.list[str]:
        """Every webhook delivery's id, sorted (from each webhook's `webhook:{id}:deliveries`)."""
        webhooks = self.client.zrange(self.keys("webhooks"), 0, -1)
        pipe = self.client.pipeline(transaction=False)
        for webhook in webhooks:
            pipe.zrange(self.keys("webhook", webhook, "deliveries"), 0, -1)
        return sorted(i for ids in pipe.execute() for i in ids)

    def _deliveries(self, after: Sequence[Any] | None, size: int) -> builtins.list[dict[str, Any]]:
        """A page of deliveries by id: the ids are read whole (ids only), the records of the page alone."""
        ids = self._delivery_ids()
        if after is not None:
            ids = [i for i in ids if i > str(after[0])]
        stored = self._hgetall([self.keys("webhook-delivery", i) for i in ids[:size]])
        return [self._load("webhook_deliveries", record) for record in stored if record]

    def _shares(self) -> builtins.list[dict[str, Any]]:
        """Every share (`shares:{workflow}` of every workflow: `{type}:{subject}` -> `{role}:{at}:{by}`)."""
        k, rows = self.keys, []
        low = "-"
        while ids := self.client.zrange(k("wfs", "ids"), low, "+", bylex=True, offset=0, num=_PAGE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hgetall(k("shares", i))
            for wf_id, shares in zip(ids, pipe.execute(), strict=True):
                for field, value in shares.items():
                    subject_type, subject_id = field.split(":", 1)
                    role, created, actor = value.split(":", 2)
                    rows.append(
                        {
                            "workflow_id": wf_id,
                            "subject_type": subject_type,
                            "subject_id": subject_id,
                            "role": role,
                            "created_at": from_micros(created),
                            "created_by": actor,
                        }
                    )
            low = f"({ids[-1]}"
        return rows

    def _collab(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every shared document (`collab:{workflow}`) or every update of their logs (`collab:{workflow}:log`,
        members `{seq}:{base64}`, with `collab:{workflow}:at`'s time of each)."""
        k, rows = self.keys, []
        low = "-"
        while ids := self.client.zrange(k("wfs", "ids"), low, "+", bylex=True, offset=0, num=_PAGE_CHUNK):
            low = f"({ids[-1]}"
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hgetall(k("collab", i))
                if name == "collab_updates":
                    pipe.zrange(k("collab", i, "log"), 0, -1)
                    pipe.hgetall(k("collab", i, "at"))
            replies = iter(pipe.execute())
            for wf_id in ids:
                document = next(replies)
                if name == "collab_documents":
                    if document:
                        rows.append(
                            {
                                "workflow_id": wf_id,
                                "base_version": int(document["base_version"]),
                                "last_seq": int(document["last_seq"]),
                                "created_at": from_micros(document["created_at"]),
                                "updated_at": from_micros(document["updated_at"]),
                            }
                        )
                    continue
                log, times = next(replies), next(replies)
                for member in log:
                    seq, data = member.split(":", 1)
                    at = times.get(seq)
                    if at is None:
                        raise MigrationError(
                            f"update {seq} of the shared document of workflow {wf_id!r} in {self.url} has no "
                            "time (written before times were kept); compact the document first"
                        )
                    rows.append(
                        {"workflow_id": wf_id, "seq": int(seq), "data": data, "created_at": from_micros(at)}
                    )
        return rows

    def _hgetall(self, keys: builtins.list[str]) -> builtins.list[dict[str, str]]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        replies: builtins.list[dict[str, str]] = pipe.execute()
        return replies

    def _load(self, name: str, stored: Mapping[str, str]) -> dict[str, Any]:
        row: dict[str, Any] = self.codecs[name].load(stored).model_dump()
        return row

    # Writes.

    def write(self, table: sa.Table, rows: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> None:
        """Write `rows` of `table` with their index entries, then the table's ledger `entry`. Not one
        transaction with the ledger, but rewriting rows is harmless: a copy interrupted in between writes the
        batch again."""
        name = table.name
        if rows:
            if name in BULK_KINDS:
                self.store.bulk.put(name, rows)
            else:
                pipe = self.client.pipeline(transaction=True)
                writer: Callable[[Any, Mapping[str, Any]], None] = getattr(self, f"_put_{name}")
                for row in rows:
                    writer(pipe, row)
                pipe.execute()
        self.client.hset(self.keys(LEDGER), table.name, dump_json(_plain(dict(entry))))

    def finish(self, table: sa.Table) -> None:
        """After a table is copied: move its counters past the copied ids (the audit chain's head, the number of
        the last permission granted)."""
        k = self.keys
        if table.name == "audit_entries":
            last = self.client.zrange(k("audit"), 0, 0, desc=True)
            if last:
                head = self.client.hget(k("audit", last[0]), "hash")
                self.client.hset(k("audit", "head"), mapping={"id": last[0], "hash": head})
        if table.name == "permissions":
            top = max((int(row["id"]) for row in self._all("permissions")), default=0)
            if top > int(self.client.get(k("perm-seq")) or 0):
                self.client.set(k("perm-seq"), top)

    def _fields(self, name: str, row: Mapping[str, Any]) -> dict[str, str]:
        return self.codecs[name].fields(row)

    def _put_plugins(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k = self.keys
        pipe.hset(k("plugin", k.pair(row["name"], row["version"])), mapping=self._fields("plugins", row))
        pipe.zadd(k("plugins"), {dump_json([row["name"], row["version"]]): 0})

    def _put_tenants(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k = self.keys
        pipe.hset(k("tenant", row["id"]), mapping=self._fields("tenants", row))
        pipe.set(k("tenant-name", row["name"]), row["id"])
        pipe.zadd(k("tenants"), {row["id"]: 0})

    def _put_users(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k = self.keys
        pipe.hset(k("user", row["id"]), mapping=self._fields("users", row))
        pipe.set(k("user-name", row["username"]), row["id"])
        pipe.zadd(k("users"), {row["id"]: 0})
        pipe.sadd(k("tenant", row["tenant_id"], "users"), row["id"])
        if row["role"] == OWNER_ROLE and not row["disabled"]:
            pipe.sadd(k("tenant", row["tenant_id"], "owners"), row["id"])

    def _put_permissions(self, pipe: Any, row: Mapping[str, Any]) -> None:
        field = dump_json([row["action"], row["resource_type"], row["resource_id"]])
        pipe.hset(
            self.keys("perms", row["user_id"]), field, f"{int(row['id'])}:{to_micros(row['created_at'])}"
        )

    def _put_api_keys(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k, created = self.keys, to_micros(row["created_at"])
        pipe.hset(k("apikey", row["id"]), mapping=self._fields("api_keys", row))
        pipe.set(k("apikey-prefix", row["prefix"]), row["id"])
        pipe.zadd(k("apikeys"), {row["id"]: created})
        pipe.zadd(k("apikeys", "user", row["user_id"]), {row["id"]: created})
        if grants_admin(row["scopes"] or []) and row.get("revoked_at") is None:
            pipe.sadd(k("apikeys", "admin"), row["id"])

    def _put_audit_entries(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k, number = self.keys, int(row["id"])
        pipe.hset(k("audit", number), mapping=self._fields("audit_entries", row))
        pipe.zadd(k("audit"), {str(number): number})
        pipe.zadd(k("audit", "at"), {str(number): to_micros(row["at"])})
        for index in (("actor", row["actor"]), ("action", row["action"]), ("rid", row["resource_id"])):
            pipe.zadd(k("audit", *index), {str(number): number})

    def _put_workflow_shares(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k, field = self.keys, f"{row['subject_type']}:{row['subject_id']}"
        value = f"{row['role']}:{to_micros(row['created_at'])}:{row['created_by']}"
        pipe.hset(k("shares", row["workflow_id"]), field, value)
        pipe.sadd(k("shared", field), row["workflow_id"])

    def _put_webhook_subscriptions(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k, created = self.keys, to_micros(row["created_at"])
        pipe.hset(k("webhook", row["id"]), mapping=self._fields("webhook_subscriptions", row))
        pipe.zadd(k("webhooks"), {row["id"]: created})
        pipe.zadd(k("webhooks", "owner", row["owner"]), {row["id"]: created})

    def _put_webhook_deliveries(self, pipe: Any, row: Mapping[str, Any]) -> None:
        """A delivery in its webhook's indexes as `engine.store.redis.webhooks` keeps them: seen event, listing,
        and when scheduled the webhook's schedule and, for an enabled webhook, the due index (or the leased one
        while a lease is held: the next claim puts an expired one back)."""
        k, sub, number = self.keys, row["subscription_id"], row["id"]
        pipe.hset(k("webhook-delivery", number), mapping=self._fields("webhook_deliveries", row))
        pipe.zadd(k("webhook", sub, "deliveries"), {number: to_micros(row["created_at"])})
        if row.get("run_id") is not None and row.get("seq") is not None:
            pipe.sadd(k("webhook", sub, "seen"), f"{row['seq']}:{row['run_id']}")
        if row["status"] != DeliveryStatus.SCHEDULED or row.get("next_attempt_at") is None:
            return
        due = to_micros(row["next_attempt_at"])
        pipe.zadd(k("webhook", sub, "scheduled"), {number: due})
        if self.client.hget(k("webhook", sub), "enabled") != "true":
            return
        if row.get("lease_until") is not None:
            pipe.zadd(k("webhook-leased"), {number: to_micros(row["lease_until"])})
        else:
            pipe.zadd(k("webhook-due"), {number: due})

    def _put_collab_documents(self, pipe: Any, row: Mapping[str, Any]) -> None:
        times = {"created_at": to_micros(row["created_at"]), "updated_at": to_micros(row["updated_at"])}
        fields = {"base_version": row["base_version"], "last_seq": row["last_seq"], **times}
        pipe.hset(self.keys("collab", row["workflow_id"]), mapping=fields)

    def _put_collab_updates(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k, seq = self.keys, int(row["seq"])
        pipe.zadd(k("collab", row["workflow_id"], "log"), {f"{seq}:{row['data']}": seq})
        pipe.hset(k("collab", row["workflow_id"], "at"), seq, to_micros(row["created_at"]))

    def _put_secrets(self, pipe: Any, row: Mapping[str, Any]) -> None:
        k = self.keys
        record = k("secret", k.pair(row["owner"], row["name"]))
        pipe.hset(record, mapping=self._fields("secrets", row))
        pipe.set(k("secret-id", row["id"]), record)
        pipe.zadd(k("secrets"), {dump_json([row["owner"], row["name"]]): 0})


def _permission_row(user_id: str, field: str, value: str) -> dict[str, Any]:
    """A `permissions` row from a grant of `perms:{user}` (`["action","type","id"]` -> `{id}:{created_at}`)."""
    action, resource_type, resource_id = json.loads(field)
    number, created = value.split(":", 1)
    return {
        "id": int(number),
        "user_id": user_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "created_at": from_micros(created),
    }


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in entry.items()}
