"""GET/POST /v1/suggestions on a served API, learning from the workflows each key may see, and
`rayweave nodes suggest` through the server and locally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.cli import build_app
from serve.config import ServeOptions
from tests.serve.api.conftest import Api
from tests.serve.api.server import serving

PARAMS = {"builtin/group_by@1": {"by": ["g"], "aggregations": {"x": ["sum"]}}, "builtin/sample@1": {"n": 2}}


def pipeline(name: str, tail: str | None) -> dict[str, Any]:
    nodes: dict[str, Any] = {"load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}}}
    if tail:
        nodes["next"] = {"type": tail, "in": {"table": "load.table"}, "params": PARAMS.get(tail, {})}
    return {
        "format": "rayweave.workflow/1",
        "name": name,
        "inputs": {"path": {"type": "String"}},
        "nodes": nodes,
        "outputs": {},
    }


@dataclass
class SuggestApi(Api):
    """The served API and the id of its stored partial workflow `draft`."""

    draft: str = ""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuggestApi]:
    """A served API whose admin stored three workflows where `describe` follows `read_csv`, one where
    `group_by` does, and the partial workflow `draft`."""
    home = tmp_path_factory.mktemp("suggest-home")
    settings = Settings(home=home, suggest_text="lexical")
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    try:
        with serving(create_app(settings, store=store, options=options)) as url:
            served = SuggestApi(url, home, store, (home / "admin.key").read_text().strip())
            with served.client() as c:
                for i, tail in enumerate(["builtin/describe@1"] * 3 + ["builtin/group_by@1"]):
                    assert (
                        c.post("/v1/workflows", json={"workflow": pipeline(f"p{i}", tail)}).status_code == 201
                    )
                draft = c.post("/v1/workflows", json={"workflow": pipeline("draft", None)})
                assert draft.status_code == 201, draft.text
            served.draft = draft.json()["workflow_id"]
            yield served
    finally:
        store.close()


def test_a_stored_workflows_port_gets_what_usually_follows_it(api: SuggestApi) -> None:
    with api.client() as c:
        answer = c.get("/v1/suggestions", params={"workflow_id": api.draft, "node": "load", "limit": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["anchor"] == {
        "node": "load",
        "node_type": "builtin/read_csv@1",
        "port": "table",
        "side": "output",
        "type": "Table",
    }
    first = body["suggestions"][0]
    assert (first["type"], first["port"], first["fit"]["kind"]) == ("builtin/describe@1", "table", "exact")
    assert body["suggestions"][1]["type"] == "builtin/group_by@1"
    assert "history: 5 workflows, 4 edges" in body["notes"]


def test_a_posted_partial_workflow_and_a_query(api: SuggestApi) -> None:
    partial = pipeline("editing", "builtin/group_by@1")
    with api.client() as c:
        feeds = c.post(
            "/v1/suggestions", json={"workflow": partial, "node": "next", "port": "table", "side": "input"}
        )
        ranked = c.post(
            "/v1/suggestions", json={"workflow": partial, "node": "load", "q": "save as parquet", "limit": 1}
        )
        text_only = c.post("/v1/suggestions", json={"q": "average of a column", "limit": 2})
    assert feeds.status_code == 200, feeds.text
    assert feeds.json()["suggestions"][0]["type"] == "builtin/read_csv@1"
    assert ranked.json()["suggestions"][0]["type"] == "builtin/write_parquet@1"
    assert "text similarity: lexical" in ranked.json()["notes"]
    assert text_only.json()["anchor"] is None
    assert text_only.json()["suggestions"][0]["type"] == "builtin/column_mean@1"


def test_history_counts_only_the_workflows_the_key_may_see(api: SuggestApi) -> None:
    key = api.key(["workflows:read", "workflows:write"], username="newcomer")
    with api.client(key) as c:
        mine = c.post("/v1/workflows", json={"workflow": pipeline("mine", "builtin/sample@1")})
        assert mine.status_code == 201, mine.text
        body = c.post(
            "/v1/suggestions", json={"workflow": pipeline("x", None), "node": "load", "limit": 1}
        ).json()
        hidden = c.get("/v1/suggestions", params={"workflow_id": api.draft, "node": "load"})
    assert body["notes"][0] == "history: 1 workflows, 1 edges"
    assert body["suggestions"][0]["type"] == "builtin/sample@1"
    assert hidden.status_code == 404 and api.draft in hidden.json()["detail"]


def test_bad_requests_name_what_is_wrong_and_never_500(api: SuggestApi) -> None:
    with api.client() as c:
        unknown_wf = c.get("/v1/suggestions", params={"workflow_id": "wf_nope", "node": "load"})
        unknown_node = c.get("/v1/suggestions", params={"workflow_id": api.draft, "node": "lod"})
        unknown_port = c.post(
            "/v1/suggestions", json={"workflow": pipeline("w", None), "node": "load", "port": "tabel"}
        )
        bad_side = c.get("/v1/suggestions", params={"q": "x", "side": "sideways"})
        nothing = c.get("/v1/suggestions")
        no_match = c.get("/v1/suggestions", params={"q": "qqqq zzzz"})
        not_a_workflow = c.post("/v1/suggestions", json={"workflow": {"nodes": 3}, "node": "a"})
        no_key = c.get("/v1/suggestions", params={"q": "x"}, headers={"Authorization": ""})
    assert unknown_wf.status_code == 404 and "'wf_nope'" in unknown_wf.json()["detail"]
    assert unknown_node.status_code == 400
    assert (
        unknown_node.json()["field"] == "node"
        and "no node 'lod'; its nodes are 'load'" in unknown_node.json()["detail"]
    )
    assert unknown_port.status_code == 400 and unknown_port.json()["field"] == "port"
    assert "no output port 'tabel'; its output ports are 'table'" in unknown_port.json()["detail"]
    assert bad_side.status_code == 422
    assert nothing.status_code == 400 and "give a node" in nothing.json()["detail"]
    assert no_match.status_code == 200
    assert no_match.json()["suggestions"] == [] and "'qqqq zzzz'" in no_match.json()["reason"]
    assert not_a_workflow.status_code == 400 and "no node 'a'" in not_a_workflow.json()["detail"]
    assert no_key.status_code == 401


def test_cli_through_the_server_and_locally(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAYWEAVE_SERVER", raising=False)
    cli = CliRunner()
    remote = cli.invoke(
        build_app(),
        [
            "nodes",
            "suggest",
            api.draft,
            "--node",
            "load",
            "--json",
            "--server",
            api.url,
            "--api-key",
            api.admin_key,
        ],
    )
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout)["suggestions"][0]["type"] == "builtin/describe@1"
    # Locally, on the same database (its workflows are the history).
    db = ["--url", f"sqlite:///{(api.home / 'rayweave.db').resolve()}"]
    table = cli.invoke(build_app(), ["nodes", "suggest", api.draft, "--node", "load", "--limit", "3", *db])
    assert table.exit_code == 0, table.output
    assert "after load.table (builtin/read_csv@1, Table)" in table.stdout
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(pipeline("local", None)))
    local = cli.invoke(
        build_app(),
        ["nodes", "suggest", "--file", str(path), "--node", "load", "-q", "parquet", "--json", *db],
    )
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["suggestions"][0]["type"] == "builtin/write_parquet@1"
    bad = cli.invoke(build_app(), ["nodes", "suggest", "--file", str(path), "--node", "nope", *db])
    assert bad.exit_code == 1 and "no node 'nope'" in bad.output
    usage = cli.invoke(build_app(), ["nodes", "suggest", "--node", "load"])
    assert usage.exit_code == 2 and "needs the workflow" in usage.output
