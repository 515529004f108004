"""Drafting a workflow from a description (POST /v1/workflows/draft, `rayweave draft`) against a scripted
OpenAI-compatible endpoint on loopback: a valid answer, one repaired from the compiler's diagnostics, one that
never validates, a dropped connection and an endpoint that is down; the API key taken from the secrets store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.secrets import SecretsService, key_provider
from engine.store import open_store
from serve.app import create_app
from serve.cli import build_app
from serve.config import ServeOptions
from serve.deps import get_settings
from tests.serve.api.conftest import Api
from tests.serve.api.fake_chat import FakeChat, fake_chat
from tests.serve.api.server import free_port, serving

MODEL_KEY = "sk-draft-test-2c9e41f7"


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    with fake_chat() as server:
        yield server


@pytest.fixture(scope="module")
def drafting(tmp_path_factory: pytest.TempPathFactory, chat: FakeChat) -> Iterator[tuple[Api, Any]]:
    """A served API whose draft model is the fake, with its key in the secrets store as alice's `llm-key`."""
    home = tmp_path_factory.mktemp("drafts-home")
    settings = Settings(
        home=home,
        draft_base_url=chat.base_url,
        draft_model="drafter",
        draft_api_key="secret:alice/llm-key",  # type: ignore[arg-type]
        draft_repair_rounds=2,
    )
    store = open_store(settings.resolved_database_url)
    alice = store.users.create("alice")
    SecretsService(store, key_provider(settings, create=True)).set(alice.id, "llm-key", MODEL_KEY)
    app = create_app(settings, store=store, options=ServeOptions(executor="local", print_admin_key=False))
    try:
        with serving(app) as url:
            yield Api(url, home, store, (home / "admin.key").read_text().strip()), app
    finally:
        store.close()


def test_a_valid_answer_is_the_draft(drafting: tuple[Api, Any], chat: FakeChat) -> None:
    api, _ = drafting
    with api.client() as client:
        answer = client.post("/v1/workflows/draft", json={"description": "add two numbers VALID"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["repair_rounds"] == 0 and body["workflow_id"] is None
    assert body["workflow"]["nodes"]["sum"]["in"] == {"a": "$inputs.a", "b": "$inputs.b"}
    sent = chat.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {MODEL_KEY}"
    system = sent["body"]["messages"][0]["content"]
    # The model is told the format and the catalog, ports with their types.
    assert "rayweave.workflow/1" in system and "builtin/add@1: Add two numbers" in system
    assert "in: a: Number, b: Number" in system


def test_the_compiler_s_diagnostics_are_sent_back_for_repair(
    drafting: tuple[Api, Any], chat: FakeChat
) -> None:
    api, _ = drafting
    before = len(chat.requests)
    with api.client() as client:
        answer = client.post("/v1/workflows/draft", json={"description": "add REPAIR", "save": True})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["repair_rounds"] == 1 and body["version"] == 1
    repair = chat.requests[before + 1]["body"]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert "RW102" in repair[-1]["content"] and "'sum'" in repair[-1]["content"]
    with api.client() as client:
        stored = client.get(answer.headers["Location"]).json()
    assert stored["workflow"]["nodes"]["sum"]["in"]["a"] == "$inputs.a"


def test_a_draft_that_stays_invalid_is_a_clear_error(drafting: tuple[Api, Any], chat: FakeChat) -> None:
    api, _ = drafting
    before, stored = len(chat.requests), len(api.store.workflows.list(limit=1000))
    with api.client() as client:
        answer = client.post(
            "/v1/workflows/draft", json={"description": "NEVER mind", "rounds": 1, "save": True}
        )
    assert answer.status_code == 422
    assert len(api.store.workflows.list(limit=1000)) == stored  # nothing saved
    problem = answer.json()
    assert len(chat.requests) == before + 2  # the answer and one repair round
    assert "after 1 repair round(s)" in problem["detail"] and "RW102" in problem["detail"]
    assert "node 'sum' port 'first'" in problem["detail"]
    assert {d["code"] for d in problem["diagnostics"]} >= {"RW102"}
    assert problem["draft"]["nodes"]["sum"]["in"]["first"] == "$inputs.a"


def test_an_endpoint_that_fails_or_is_down_is_a_502(drafting: tuple[Api, Any]) -> None:
    api, app = drafting
    with api.client() as client:
        dropped = client.post("/v1/workflows/draft", json={"description": "DROP it"})
        assert dropped.status_code == 502
        assert "the model endpoint http://127.0.0.1:" in dropped.json()["detail"]
        # The same server with the endpoint's settings changed: a port nobody listens on, then none at all.
        down = f"http://127.0.0.1:{free_port()}/v1"
        app.dependency_overrides[get_settings] = lambda: Settings(
            home=api.home, draft_base_url=down, draft_model="m"
        )
        try:
            answer = client.post("/v1/workflows/draft", json={"description": "VALID"})
            app.dependency_overrides[get_settings] = lambda: Settings(home=api.home)
            unconfigured = client.post("/v1/workflows/draft", json={"description": "VALID"})
        finally:
            app.dependency_overrides.clear()
    assert answer.status_code == 502, answer.text
    detail = answer.json()["detail"]
    assert f"cannot reach the model endpoint {down}/chat/completions" in detail and "ConnectError" in detail
    assert unconfigured.status_code == 503 and "RAYWEAVE_DRAFT_BASE_URL" in unconfigured.json()["detail"]


def test_a_reader_may_not_draft(drafting: tuple[Api, Any]) -> None:
    api, _ = drafting
    with api.client(api.key(["workflows:read"], username="reader")) as client:
        assert client.post("/v1/workflows/draft", json={"description": "VALID"}).status_code == 403


def test_the_command_drafts_through_the_server_and_here(
    drafting: tuple[Api, Any], chat: FakeChat, tmp_path: Path
) -> None:
    api, _ = drafting
    cli = CliRunner()
    remote = cli.invoke(
        build_app(), ["draft", "add VALID", "--server", api.url, "--api-key", api.admin_key, "--json"]
    )
    assert remote.exit_code == 0, remote.output
    assert '"repair_rounds": 0' in remote.stdout
    env = {
        "RAYWEAVE_HOME": str(tmp_path),
        "RAYWEAVE_DRAFT_BASE_URL": chat.base_url,
        "RAYWEAVE_DRAFT_MODEL": "drafter",
        "RAYWEAVE_DRAFT_API_KEY": MODEL_KEY,
    }
    out = tmp_path / "draft.json"
    # Here, on the installation's database and home: the key is alice's secret, the draft saved as hers.
    here = {
        **env,
        "RAYWEAVE_HOME": str(api.home),
        "RAYWEAVE_DATABASE_URL": f"sqlite:///{api.home / 'rayweave.db'}",
        "RAYWEAVE_DRAFT_API_KEY": "secret:alice/llm-key",
    }
    local = cli.invoke(
        build_app(),
        ["draft", "add REPAIR", "--out", str(out), "--save", "--user", "alice", "--name", "mine"],
        env=here,
    )
    assert local.exit_code == 0, local.output
    assert "valid after 1 repair round(s)" in local.stderr and '"builtin/add@1"' in out.read_text()
    assert chat.requests[-1]["auth"] == f"Bearer {MODEL_KEY}"
    saved = api.store.workflows.list(name="mine")
    assert [(w.owner, w.latest_version) for w in saved] == [(api.store.users.get_by_username("alice").id, 1)]
    never = cli.invoke(build_app(), ["draft", "NEVER", "--rounds", "0"], env=env)
    assert never.exit_code == 1
    assert "after 0 repair round(s)" in never.stderr and "RW102 error node 'sum' port 'first'" in never.stderr
    down = cli.invoke(
        build_app(),
        ["draft", "VALID"],
        env={**env, "RAYWEAVE_DRAFT_BASE_URL": f"http://127.0.0.1:{free_port()}"},
    )
    assert down.exit_code == 1 and "cannot reach the model endpoint" in down.stderr
    assert MODEL_KEY not in down.output
    unset = cli.invoke(build_app(), ["draft", "VALID"], env={"RAYWEAVE_HOME": str(tmp_path)})
    assert unset.exit_code == 2 and "RAYWEAVE_DRAFT_BASE_URL" in unset.stderr
