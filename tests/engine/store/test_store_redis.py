"""What only the Redis backend has to say (ADR 024): `open_store` refuses a server that would lose acknowledged
writes unless the URL relaxes it, a missing repository would say so, its plugins and tenants answer as SQLite's do, its URL and key prefix, what a deleted run leaves behind (nothing), the order a Stream imposes
on coordinator-numbered events, and an unreachable server seen as one; who sees which workflows and runs (every
audience's pages as on SQLite), and the last-owner and last-admin rules holding under concurrent changes. The conformance modules it passes run on
it through `tests/engine/store/conftest.py`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from engine.store import (
    DuplicateEventError,
    DurabilityError,
    LastAdminKeyError,
    NewEvent,
    NotFoundError,
    Store,
    backend_errors,
    is_unavailable,
    open_store,
)
from engine.store.redis import RedisStore, split_url
from engine.store.redis.durability import durability_problems
from engine.store.redis.store import NotBuilt
from engine.store.roles import LastOwnerError
from engine.store.shares import Audience
from tests.engine.store.redis_support import REDIS_SERVER, redis_store

DOC = {"format": "rayweave.workflow/1", "name": "r", "nodes": {}}


@pytest.fixture
def rstore() -> Iterator[RedisStore]:
    with redis_store() as made:
        yield made


@contextmanager
def _config(client: Any, name: str, value: str) -> Iterator[None]:
    """The server's setting `name` at `value` for the block, then as it was (the server is shared)."""
    before = client.config_get(name)[name]
    client.config_set(name, value)
    try:
        yield
    finally:
        _settle_aof(client)
        client.config_set(name, before)


def _settle_aof(client: Any) -> None:
    """Wait (at most 10 s) for an append-only file rewrite the server started to end."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.05)


def test_open_store_refuses_a_server_that_could_lose_writes_unless_the_url_relaxes_it(
    rstore: RedisStore,
) -> None:
    strict = f"{REDIS_SERVER}?prefix={rstore.prefix}"
    relaxed = f"{strict}&durability=relaxed"
    wf = rstore.workflows.create(DOC).workflow_id
    with _config(rstore.client, "maxmemory-policy", "allkeys-lru"):
        with pytest.raises(DurabilityError, match="set `maxmemory-policy noeviction`") as info:
            open_store(strict)
        assert "durability=relaxed" in str(info.value) and rstore.prefix in str(info.value)
        with open_store(relaxed) as store:
            assert store.backend == "redis" and store.workflows.latest(wf).document == DOC
            assert store.connect_url == relaxed  # another process opens it as this one did
    # A durable server (the append-only file on, `appendfsync everysec` or `always`, no eviction) opens.
    with _config(rstore.client, "appendonly", "yes"), open_store(strict) as store:
        assert store.workflows.latest(wf).document == DOC
    with pytest.raises(ValueError, match="durability=strict"):
        open_store(f"{strict}&durability=maybe")
    with pytest.raises(ValueError, match="SQL stores only"):
        open_store(relaxed, workflows_dir="/tmp/never")


def test_a_missing_repository_says_the_backend_is_under_construction() -> None:
    # Every repository is built; a placeholder still names what it stands for (a repository the protocol gains).
    with pytest.raises(NotImplementedError, match=r"under construction: store\.webhooks\.list\(\) is not"):
        NotBuilt("webhooks").list()


def test_the_url_names_server_database_and_prefix(rstore: RedisStore) -> None:
    assert split_url("redis://:pw@h:6379/3?prefix=blue") == ("redis://:pw@h:6379/3", "blue")
    assert split_url("redis://h:6379/0")[1] == "rayweave"
    with pytest.raises(ValueError, match="prefix"):
        split_url("redis://h/0?prefix=a*")
    with pytest.raises(ValueError, match="not a Redis URL"):
        split_url("postgresql://h/db")
    secret = RedisStore.connect("redis://:hunter2@127.0.0.1:6379/0?prefix=x")
    assert "hunter2" not in secret.url and "hunter2" in secret.connect_url
    secret.close()
    saved = rstore.workflows.create(DOC)
    with RedisStore.connect(rstore.connect_url) as other:
        assert other.workflows.latest(saved.workflow_id).document == DOC
    with RedisStore.connect(f"{REDIS_SERVER}?prefix={rstore.prefix}-other") as elsewhere:
        assert elsewhere.workflows.list() == []


def test_a_deleted_run_leaves_no_key_or_index_entry(rstore: RedisStore) -> None:
    wf = rstore.workflows.create(DOC).workflow_id
    before = set(rstore.client.scan_iter(match=f"{rstore.prefix}:*"))
    run = rstore.runs.create(workflow_id=wf, idempotency_key="k", owner="ada", max_active=5).run
    rstore.runs.update_status(run.id, "running")
    rstore.events.append(run.id, [NewEvent("run.started")])
    rstore.node_runs.start(run.id, "a")
    assert len(set(rstore.client.scan_iter(match=f"{rstore.prefix}:*")) - before) >= 8
    rstore.runs.delete(run.id)
    assert set(rstore.client.scan_iter(match=f"{rstore.prefix}:*")) == before
    again = rstore.runs.create(workflow_id=wf, idempotency_key="k", owner="ada")
    assert again.created  # the key went with the run


def test_coordinator_numbers_may_skip_but_never_go_back(rstore: RedisStore) -> None:
    run = rstore.runs.create(document=DOC).run.id
    rstore.events.append(run, [NewEvent("run.queued", seq=1), NewEvent("run.started", seq=2)])
    assert rstore.events.append(run, [NewEvent("node.started", "a", seq=5)]) == [5]
    with pytest.raises(DuplicateEventError, match="up to sequence 5"):
        rstore.events.append(run, [NewEvent("node.started", "b", seq=4)])
    with pytest.raises(ValueError, match="growing"):
        rstore.events.append(run, [NewEvent("node.log", seq=7), NewEvent("node.log", seq=6)])
    assert rstore.events.append(run, [NewEvent("node.succeeded", "a")]) == [6]
    assert [e.seq for e in rstore.events.read(run)] == [1, 2, 5, 6]
    assert rstore.events.last_seq(run) == 6


def test_an_unreachable_server_is_a_backend_error_that_means_unavailable() -> None:
    down = RedisStore.connect("redis://127.0.0.1:1/0?prefix=nobody")
    with pytest.raises(backend_errors()) as info:
        down.ping()
    assert is_unavailable(info.value)
    down.close()


def test_the_test_store_leaves_no_key_behind() -> None:
    with redis_store() as made:
        made.workflows.create(DOC)
        prefix, client = made.prefix, made.client
        assert list(client.scan_iter(match=f"{prefix}:*"))
    with RedisStore.connect(f"{REDIS_SERVER}?prefix={prefix}") as check:
        assert list(check.client.scan_iter(match=f"{prefix}:*")) == []


def _plugins_and_tenants(store: Store) -> list[object]:
    """What a caller sees of plugins and tenants after the same calls (times left out: they differ)."""
    seen: list[object] = []
    store.plugins.add("geo", "2.0.0", {"nodes": ["geo/buffer@2"]})
    store.plugins.add("geo", "1.0.0", {"nodes": ["geo/buffer@1"]})
    store.plugins.add("csv", "0.1.0", {"nodes": []}, enabled=False)
    store.plugins.add("geo", "1.0.0", {"nodes": ["geo/buffer@1", "geo/area@1"]})  # again: replaced
    seen.append([(p.name, p.version, p.manifest, p.enabled) for p in store.plugins.list()])
    seen.append([p.version for p in store.plugins.list(name="geo")])
    seen.append([p.name for p in store.plugins.list(enabled_only=True)])
    seen.append(store.plugins.set_enabled("csv", "0.1.0", True).enabled)
    store.plugins.remove("geo", "2.0.0")
    seen.append([(p.name, p.version, p.enabled) for p in store.plugins.list()])
    seen.append(store.plugins.get("geo", "1.0.0").manifest)
    for call in (
        lambda: store.plugins.get("geo", "2.0.0"),
        lambda: store.plugins.remove("geo", "2.0.0"),
        lambda: store.plugins.set_enabled("nope", "1", False),
    ):
        with pytest.raises(NotFoundError) as info:
            call()
        seen.append(str(info.value))
    acme = store.tenants.create(" acme ")
    seen.append(acme.name)
    with pytest.raises(ValueError, match="already exists"):
        store.tenants.create("acme")
    with pytest.raises(ValueError, match="needs a name"):
        store.tenants.create("  ")
    seen.append(store.tenants.ensure("acme").id == acme.id)
    seen.append(store.tenants.get(acme.id).name)
    seen.append(store.tenants.get("default").id)  # made on first use
    store.tenants.ensure("beta")
    seen.append([t.name for t in store.tenants.list()])
    with pytest.raises(NotFoundError) as missing:
        store.tenants.get_by_name("gamma")
    seen.append(str(missing.value))
    return seen


def test_plugins_and_tenants_behave_as_on_sqlite(rstore: RedisStore, sqlite_store: Store) -> None:
    # Their conformance modules (test_access, test_tenants_roles_shares) run on Redis too; these calls add what
    # those do not check (trimmed names, the default tenant made on first use, the errors' text).
    assert _plugins_and_tenants(cast(Store, rstore)) == _plugins_and_tenants(sqlite_store)


def _listings(store: Store) -> list[object]:
    """Every combination of run-list filters, paged by 4, over the same runs (ids by position: they differ)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    wfs = [store.workflows.create(DOC, workflow_id=f"wf{i}").workflow_id for i in range(2)]
    statuses = ["queued", "running", "succeeded", "failed"]
    for i in range(24):
        at = t0 + timedelta(seconds=i // 3)  # three runs share each creation time: ties broken by id
        wf = wfs[i % 2] if i % 5 else None
        run = store.runs.create(
            workflow_id=wf,
            document=None if wf else DOC,
            owner=("ada", "bob")[i % 3 == 0],
            run_id=f"r{i:02d}",
            at=at,
        ).run
        if statuses[i % 4] != "queued":
            store.runs.update_status(run.id, statuses[i % 4], at=at)
    seen: list[object] = []
    for wf_filter in (None, "wf0"):
        for status in (None, "failed", ["queued", "succeeded"]):
            for owner in (None, "bob"):
                for after, before in ((None, None), (t0 + timedelta(seconds=2), t0 + timedelta(seconds=6))):
                    ids, cursor = [], None
                    while True:
                        page = store.runs.list(
                            workflow_id=wf_filter,
                            status=status,
                            owner=owner,
                            created_after=after,
                            created_before=before,
                            limit=4,
                            cursor=cursor,
                        )
                        ids.append([run.id for run in page.items])
                        if not (cursor := page.next_cursor):
                            break
                    seen.append(((wf_filter, status, owner, after), ids))
    return seen


def test_run_listings_match_sqlite_for_every_filter(rstore: RedisStore, sqlite_store: Store) -> None:
    # Redis picks an index per filter combination and checks the rest run by run (ADR 024): the pages must be
    # the SQL store's, ties of creation time and the bounds included.
    assert _listings(cast(Store, rstore)) == _listings(sqlite_store)


def _visible(store: Store) -> list[object]:
    """What each audience sees of workflows, shares and runs (paged by 3, with and without filters), as names."""
    acme, other = store.tenants.create("acme"), store.tenants.create("other")
    people = [("alice", acme, "editor"), ("bob", acme, "runner"), ("boss", acme, "admin")]
    users = {name: store.users.create(name, tenant_id=tenant.id, role=role) for name, tenant, role in people}
    users["eve"] = store.users.create("eve", tenant_id=other.id, role="owner")
    names = {user.id: name for name, user in users.items()} | {acme.id: "acme", other.id: "other"}
    for i, owner in enumerate(["alice", "alice", "bob", "eve", "alice"]):
        store.workflows.create(DOC, owner=users[owner].id, workflow_id=f"w{i}")
    store.shares.set("w0", "tenant", acme.id, "viewer")
    store.shares.set("w0", "user", users["bob"].id, "runner")
    store.shares.set("w3", "user", users["bob"].id, "runner")
    store.shares.set("w4", "user", users["eve"].id, "editor")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(30):
        wf = f"w{i % 5}" if i % 4 else None
        owner = ["alice", "bob", "boss", "eve", "stranger"][i % 5]
        store.runs.create(
            workflow_id=wf,
            workflow_version=1 if wf else None,
            document=None if wf else DOC,
            owner=users[owner].id if owner in users else owner,
            run_id=f"r{i:02d}",
            at=t0 + timedelta(seconds=i // 2),  # pairs of runs share a creation time: ties broken by id
        )
        if i % 3 == 0:
            store.runs.update_status(f"r{i:02d}", "running")
    store.workflows.delete("w4")  # its runs stay visible to its owner and to those it was shared with
    seen: list[object] = [[(s.subject_type, names[s.subject_id], s.role) for s in store.shares.list("w0")]]
    for name, user in users.items():
        for whole in (False, True):
            audience = Audience(user.id, user.tenant_id, whole)
            workflows = sorted(w.id for w in store.workflows.list(visible_to=audience))
            seen.append((name, whole, workflows, store.shares.role_of("w0", audience)))
            for wf_filter, status in ((None, None), ("w0", None), (None, "running"), ("w4", "running")):
                pages, cursor = [], None
                while True:
                    page = store.runs.list(
                        workflow_id=wf_filter, status=status, visible_to=audience, limit=3, cursor=cursor
                    )
                    pages.append([run.id for run in page.items])
                    if not (cursor := page.next_cursor):
                        break
                seen.append((name, whole, wf_filter, status, pages))
    return seen


def test_visible_workflows_and_runs_match_sqlite(rstore: RedisStore, sqlite_store: Store) -> None:
    # Redis reads either the union of what an audience may see or the filters' index checked run by run (ADR
    # 024, section 9); both must give the SQL store's pages, deleted workflows and shares included.
    assert _visible(cast(Store, rstore)) == _visible(sqlite_store)


def _race(*calls: object) -> list[str]:
    """Run the calls at once (one thread each); what each did: "done" or the store's refusal."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: object) -> None:
        barrier.wait()
        try:
            call()  # type: ignore[operator]
            outcomes.append("done")
        except (LastOwnerError, LastAdminKeyError):
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(outcomes)


def test_concurrent_demotions_and_disablings_keep_an_owner_and_an_admin(rstore: RedisStore) -> None:
    acme = rstore.tenants.create("acme")
    owners = [rstore.users.create(f"o{i}", tenant_id=acme.id, role="owner") for i in range(4)]
    demote = [lambda u=u: rstore.users.set_role(u.id, "member") for u in owners[:2]]
    disable = [lambda u=u: rstore.users.set_disabled(u.id, True) for u in owners[2:]]
    assert _race(*demote, *disable) == ["done", "done", "done", "refused"]
    assert len([u for u in rstore.users.list(tenant_id=acme.id) if u.role == "owner" and not u.disabled]) == 1
    # Disabling the user of one admin key while revoking the other: one of the two is refused, every time.
    for round_ in range(5):
        root = rstore.users.create(f"root{round_}", is_admin=True)
        ops = rstore.users.create(f"ops{round_}", is_admin=True)
        rstore.api_keys.create(root.id, scopes=["admin"])
        theirs, _ = rstore.api_keys.create(ops.id, scopes=["*"])
        outcomes = _race(
            lambda root=root: rstore.users.set_disabled(root.id, True),
            lambda theirs=theirs: rstore.api_keys.revoke(theirs.id),
        )
        assert outcomes == ["done", "refused"]
        assert len(rstore.api_keys.active_admin_keys()) == 1
        for key in rstore.api_keys.active_admin_keys():  # the next round starts without an admin key
            rstore.api_keys.revoke(key.id, keep_an_admin=False)


def test_a_server_that_could_lose_writes_is_named_with_what_to_set(rstore: RedisStore) -> None:
    durable = {"aof_enabled": 1, "maxmemory_policy": "noeviction", "aof_last_write_status": "ok"}
    assert durability_problems(durable, "always") == []
    assert durability_problems(durable, "everysec") == []  # a documented trade, not a fault
    assert durability_problems(durable, None) == []  # CONFIG not allowed: the INFO sections decide
    (aof,) = durability_problems({**durable, "aof_enabled": 0}, "everysec")
    assert "appendonly yes" in aof
    (fsync,) = durability_problems(durable, "no")
    assert "appendfsync always" in fsync
    (evict,) = durability_problems({**durable, "maxmemory_policy": "allkeys-lru"}, "always")
    assert "'allkeys-lru'" in evict and "noeviction" in evict
    # The test server runs without an append-only file (it is a test server); whatever it runs with is read.
    assert all(isinstance(problem, str) for problem in rstore.durability_problems())


def test_records_read_in_a_fresh_process_have_readable_fields() -> None:
    # A Ray worker that never touched a SQL store loads records first: their table models' mappers must be
    # configured by then, or reading a field fails (the run coordinator's sink did, on the served API's runs).
    code = (
        "from engine.store.models import NodeRun\n"
        "from engine.store.redis.codec import Codec\n"
        "print(Codec(NodeRun).load({'run_id': 'r', 'node_id': 'a', 'attempt': '2', 'status': 'running'}).attempt)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
