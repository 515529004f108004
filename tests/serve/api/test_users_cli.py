"""`rayweave users` and `rayweave shares`, on the store directly (`--url`) and through a server (`--server`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve.cli import build_app
from tests.serve.api.conftest import Api, add_doc


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAYWEAVE_SERVER", raising=False)
    return CliRunner()


def test_users_and_shares_on_the_store(cli: CliRunner, api: Api) -> None:
    url = ["--url", api.store.connect_url]
    app = build_app()
    made = cli.invoke(
        app, ["users", "create", "cli-olga", "--role", "owner", "--tenant", "cli-co", "--key", "--json", *url]
    )
    assert made.exit_code == 0, made.output
    olga = json.loads(made.output)
    assert olga["role"] == "owner" and olga["key"].startswith("rw_")
    assert (
        cli.invoke(
            app, ["users", "create", "cli-pat", "--role", "viewer", "--tenant", "cli-co", *url]
        ).exit_code
        == 0
    )
    listed = json.loads(cli.invoke(app, ["users", "list", "--tenant", "cli-co", "--json", *url]).output)[
        "items"
    ]
    assert [(u["username"], u["role"]) for u in listed] == [("cli-olga", "owner"), ("cli-pat", "viewer")]
    changed = cli.invoke(app, ["users", "set-role", "cli-pat", "runner", *url])
    assert changed.exit_code == 0 and "now runner (was viewer)" in changed.output
    last = cli.invoke(app, ["users", "disable", "cli-olga", *url])
    assert last.exit_code == 1 and "last enabled owner" in last.output
    assert cli.invoke(app, ["users", "set-role", "cli-pat", "boss", *url]).exit_code == 2
    with api.client(olga["key"]) as c:
        wf = c.post("/v1/workflows", json={"workflow": add_doc("cli-shared")}).json()["workflow_id"]
    shared = cli.invoke(
        app, ["shares", "set", wf, "--user", "cli-pat:runner", "--tenant-role", "viewer", "--json", *url]
    )
    assert shared.exit_code == 0, shared.output
    assert {(i.get("user"), i["role"]) for i in json.loads(shared.output)["items"]} == {
        ("cli-pat", "runner"),
        (None, "viewer"),
    }
    audit = [e.action for e in api.store.audit.list(limit=20)]
    assert {"users.create", "users.set_role", "workflows.share"} <= set(audit)


def test_users_through_the_server(cli: CliRunner, api: Api) -> None:
    remote = ["--server", api.url, "--api-key", api.admin_key]
    app = build_app()
    made = cli.invoke(
        app, ["users", "create", "srv-quinn", "--role", "editor", "--tenant", "srv-co", "--json", *remote]
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["role"] == "editor"
    changed = cli.invoke(app, ["users", "set-role", "srv-quinn", "owner", "--json", *remote])
    assert json.loads(changed.output)["previous_role"] == "editor"
    refused = cli.invoke(app, ["users", "disable", "srv-quinn", *remote])
    assert refused.exit_code == 1 and "HTTP 409" in refused.output
    listed = cli.invoke(app, ["users", "list", "--tenant", "srv-co", *remote])
    assert "srv-quinn" in listed.output and "owner" in listed.output
