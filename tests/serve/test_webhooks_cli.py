"""`rayweave webhooks` (issue 19): create (the secret printed once), list, deliveries, redeliver, delete, and
bad input named by option, directly on the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.store import open_store
from engine.store.models import DeliveryStatus
from engine.store.webhooks import NewDelivery
from serve.cli import build_app


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("webhooks-cli") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAYWEAVE_HOME", str(home))
        env.setenv("RAYWEAVE_WEBHOOK_ALLOW", "127.0.0.1")
        env.delenv("RAYWEAVE_DATABASE_URL", raising=False)
        with open_store(Settings(home=home).resolved_database_url) as store:
            store.users.create("alice")
        yield home


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_create_list_deliveries_redeliver_delete(home: Path) -> None:
    code, out = _run(
        "webhooks",
        "create",
        "http://127.0.0.1:9/hook",
        "--user",
        "alice",
        "--event",
        "run.failed",
        "--event",
        "anomaly.detected",
        "--json",
    )
    assert code == 0, out
    made = json.loads(out)
    assert made["secret"].startswith("whsec_") and made["event_types"] == ["run.failed", "anomaly.detected"]
    code, out = _run("webhooks", "list", "--user", "alice", "--json")
    assert [w["id"] for w in json.loads(out)] == [made["id"]] and made["secret"] not in out
    with open_store(Settings(home=home).resolved_database_url) as store:
        store.webhooks.enqueue(made["id"], [NewDelivery("io.rayweave.webhook.ping", {"id": "p"}, id="d1")])
        store.webhooks.record_attempt("d1", status=DeliveryStatus.DEAD, status_code=410, error="refused")
    code, out = _run("webhooks", "deliveries", made["id"], "--status", "dead", "--json")
    assert code == 0 and [(d["id"], d["last_status_code"]) for d in json.loads(out)] == [("d1", 410)]
    code, out = _run("webhooks", "redeliver", made["id"], "d1")
    assert code == 0 and "scheduled delivery d1" in out
    code, out = _run("webhooks", "deliveries", made["id"])
    assert "d1  scheduled" in out
    assert _run("webhooks", "delete", made["id"])[0] == 0
    code, out = _run("webhooks", "delete", made["id"])
    assert code == 1 and "does not exist" in out


BAD = [
    (["http://10.0.0.1/", "--event", "run.failed"], "TARGET_URL: host '10.0.0.1' is 10.0.0.1, an internal"),
    (["ftp://x/", "--event", "run.failed"], "TARGET_URL: 'ftp://x/' must start with https://"),
    (["http://127.0.0.1/", "--event", "run.finished"], "--event: 'run.finished' is not an event type"),
    (["http://127.0.0.1/", "--event", "run.failed", "--workflow", "nope"], "--workflow: workflow 'nope'"),
    (["http://127.0.0.1/", "--event", "run.failed", "--user", "nobody"], "--user: no user 'nobody'"),
]


def test_bad_input_exits_2_naming_the_option(home: Path) -> None:
    for args, words in BAD:
        user = [] if "--user" in args else ["--user", "alice"]
        code, out = _run("webhooks", "create", *args, *user)
        assert code == 2 and words in out, (args, out)
