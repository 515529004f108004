"""Secrets in runs on Ray (issue 18): resolved inside the worker, and found nowhere else afterwards.

A secret is planted, used by nodes that log it, return it and fail with it, and then every place rayweave
keeps data is searched for it: the database (every table: runs, events, node runs, audit), the durable result
store, the result cache on disk and a full export of the store.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.secrets import SecretsService, key_provider
from engine.store import Store
from engine.store.archive import export_archive
from engine.workflow import Workflow
from nodes.states import NodeStatus
from tests.engine.secrets import flows
from tests.engine.store.sql_support import dump_tables

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

PLANTED = "pl4nted-Zq8-secret-value"


@pytest.fixture
def store(settings: Settings) -> Store:
    from engine.store import open_store

    opened = open_store(settings.resolved_database_url)
    SecretsService(opened, key_provider(settings, create=True)).set("alice", "api-token", PLANTED)
    return opened


def _files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != "master.key" and needle in path.read_bytes():
            found.append(str(path))
    return found


def _workflow(node_fn: object, name: str) -> Workflow:
    wf = Workflow(name)
    text = wf.input("text", "String")
    wf.output("out", wf.add("n", node_fn, text=text, params={"token": {"secret": "api-token"}}))
    return wf


def test_a_planted_secret_is_used_in_the_worker_and_stored_nowhere(settings: Settings, store: Store) -> None:
    runner = DurableRunner(settings, store=store, cache=True)
    used = runner.run(_workflow(flows.call_api, "uses-secret"), {"text": "hi"}, owner="alice", timeout=120)
    assert used.ok, used.error
    assert used.outputs == {"out": "hi:" + hashlib.sha256(PLANTED.encode()).hexdigest()[:12]}
    events = [e.to_json() for e in store.events.read(used.run_id)]
    logs = [e for e in events if e["type"] == "node.log"]
    assert any("calling the API with token [secret]" in json.dumps(e) for e in logs)

    leaked = runner.run(_workflow(flows.leak, "leaks-secret"), {"text": "hi"}, owner="alice", timeout=120)
    assert not leaked.ok
    assert leaked.nodes["n"].status is NodeStatus.FAILED
    assert leaked.nodes["n"].error.type == "SecretLeakError"
    assert "must not leave the node" in leaked.nodes["n"].error.message

    failed = runner.run(
        _workflow(flows.fail_loudly, "fails-secret"), {"text": "hi"}, owner="alice", timeout=120
    )
    assert not failed.ok and "refused token [secret] for hi" in failed.nodes["n"].error.message

    # Another owner has no such secret: the node fails saying so, and nothing is opened for them.
    other = runner.run(_workflow(flows.call_api, "uses-secret"), {"text": "hi"}, owner="bob", timeout=120)
    assert (
        not other.ok
        and "secret 'api-token' does not exist for the run's owner" in other.nodes["n"].error.message
    )

    reads = [e for e in store.audit.list(limit=200) if e.action == "secrets.read"]
    assert {(e.actor, e.resource_id, e.outcome) for e in reads} == {
        ("alice", "alice/api-token", "ok"),
        ("bob", "bob/api-token", "error"),
    }
    assert used.run_id in {e.details["run_id"] for e in reads}

    needle = PLANTED.encode()
    assert PLANTED not in dump_tables(store)
    assert PLANTED not in json.dumps(export_archive(store, include_runs=True), default=str)
    assert _files_containing(settings.home, needle) == []


def test_a_run_without_the_store_cannot_open_secrets(settings: Settings) -> None:
    from engine import run

    result = run(_workflow(flows.call_api, "sdk-secret"), {"text": "hi"}, executor="local")
    assert not result.ok
    assert "started without access to the secrets store" in result.nodes["n"].error.message
