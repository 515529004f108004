"""`nlp/generate@1` against a fake OpenAI-compatible endpoint on loopback: settings, the access policy, the
API key kept out of outputs, logs, events and errors, timeouts and bad answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.execution.events import Event
from nodes import Catalog
from nodes.plugins.remote import PluginNodeDefinition
from nodes.plugins.testing import run_plugin_node
from tests.nodes.firstparty.nlp.conftest import API_KEY, API_KEY_ENV, FakeServer, with_worker_env

NODE = "nlp/generate@1"
WORKFLOW = {
    "format": "rayweave.workflow/1",
    "name": "ask",
    "inputs": {"question": {"type": "String"}},
    "nodes": {"llm": {"type": NODE, "in": {"prompt": "$inputs.question"}}},
    "outputs": {"answer": "llm.text", "usage": "llm.usage"},
}


@pytest.fixture(scope="module")
def generate(nlp_nodes: dict[str, PluginNodeDefinition]) -> PluginNodeDefinition:
    """The node, with the API key in its workers' environment (as an operator would set it)."""
    return with_worker_env(nlp_nodes[NODE], **{API_KEY_ENV: API_KEY})


def test_generate_calls_the_endpoint_with_the_key(
    generate: PluginNodeDefinition, fake_llm: FakeServer
) -> None:
    params = {"base_url": fake_llm.base_url, "model": "tiny", "api_key_env": API_KEY_ENV, "max_tokens": 5}
    result = run_plugin_node(generate, {"prompt": "Say hi", "system": "Be brief."}, params)
    assert dict(result) == {
        "text": "Hello from tiny",
        "finish_reason": "stop",
        "model": "tiny",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    sent = fake_llm.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {API_KEY}"
    assert sent["body"] == {
        "model": "tiny",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        "max_tokens": 5,
    }


def test_the_key_never_leaves_the_worker(generate: PluginNodeDefinition, fake_llm: FakeServer) -> None:
    params = {"base_url": fake_llm.base_url, "api_key_env": API_KEY_ENV}
    echoed = run_plugin_node(generate, {"prompt": "repeat my key"}, {**params, "model": "echo"})
    assert fake_llm.requests[-1]["auth"] == f"Bearer {API_KEY}"  # the server got it ...
    assert API_KEY not in repr(echoed.events) and API_KEY not in str(dict(echoed))  # ... and echoed it back
    assert "Bearer [redacted]" in echoed["text"]
    with pytest.raises(
        Exception,
        match=r"answered 401 Unauthorized.*check the API key in the environment variable "
        f"{API_KEY_ENV}",
    ) as denied:
        run_plugin_node(generate, {"prompt": "hi"}, {**params, "model": "deny"})
    assert API_KEY not in str(denied.value) and "[redacted]" in str(denied.value)


def _catalog(definition: PluginNodeDefinition) -> Catalog:
    catalog = Catalog.builtin()
    catalog.add(definition)
    return catalog


def test_a_run_takes_endpoint_and_model_from_settings_and_needs_the_allowlist(
    generate: PluginNodeDefinition, fake_llm: FakeServer, tmp_path: Path
) -> None:
    configured = {"llm_base_url": fake_llm.base_url, "llm_model": "echo", "llm_api_key_env": API_KEY_ENV}
    catalog = _catalog(generate)

    refused = engine.run(
        WORKFLOW,
        {"question": "hi"},
        catalog=catalog,
        cache=False,
        settings=Settings(home=tmp_path / "a", **configured),
    )
    error = refused.nodes["llm"].error
    assert error is not None and error.type == "AccessDeniedError"
    assert "nlp/generate@1: param 'base_url': refused to connect to '127.0.0.1'" in error.message
    assert "RAYWEAVE_HTTP_ALLOW" in error.message

    seen: list[Event] = []
    settings = Settings(home=tmp_path / "b", http_allow=["127.0.0.1"], **configured)
    allowed = engine.run(
        WORKFLOW, {"question": "hi"}, catalog=catalog, cache=False, settings=settings, on_event=seen.append
    )
    assert allowed.ok, allowed.errors
    assert allowed.outputs["answer"] == "you said 'hi'; auth was 'Bearer [redacted]'"
    assert fake_llm.requests[-1]["auth"] == f"Bearer {API_KEY}"
    assert any(e.type == "node.log" for e in seen)  # the node logged its call ...
    assert API_KEY not in repr([e.to_json() for e in seen])  # ... and nothing the run recorded holds the key
    assert API_KEY not in repr(allowed.to_json())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model": "slow", "timeout_s": 0.5}, r"timed out after 0.5 s; raise param 'timeout_s'"),
        (
            {"model": "not-json"},
            r"answered 200 with a body that is not a JSON object \('<html>gateway says hi</html>'\)",
        ),
        ({"model": "no-choices"}, r"answered JSON without a text at choices\[0\].message.content"),
        (
            {"model": "m", "base_url": "http://user:hunter2@127.0.0.1:9/v1"},
            r"POST http://127.0.0.1:9/v1/chat/completions could not connect",
        ),
        ({"model": "m", "base_url": ""}, r"no endpoint: set param 'base_url'.*or the setting llm_base_url"),
        (
            {"model": "", "base_url": "http://127.0.0.1:9"},
            r"no model: set param 'model' or the setting llm_model",
        ),
        ({"model": "m", "max_tokens": 0}, r"param 'max_tokens' is 0; use a number >= 1"),
    ],
)
def test_endpoint_failures_are_clear(
    nlp_nodes: dict[str, PluginNodeDefinition], fake_llm: FakeServer, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=f"nlp/generate@1: .*{message}") as raised:
        run_plugin_node(nlp_nodes[NODE], {"prompt": "hi"}, {"base_url": fake_llm.base_url, **params})
    assert "hunter2" not in str(raised.value)  # credentials in a URL are not shown either


def test_the_settings_name_the_key_variable_never_hold_the_key() -> None:
    assert Settings(llm_api_key_env="MY_KEY").llm_api_key_env == "MY_KEY"
    with pytest.raises(ValueError, match="llm_api_key_env"):
        Settings(llm_api_key_env="sk-not a variable name")
    with pytest.raises(ValueError, match="llm_base_url"):
        Settings(llm_base_url="ftp://example.org")


def test_a_base_url_without_a_version_gets_v1(
    nlp_nodes: dict[str, PluginNodeDefinition], fake_llm: FakeServer
) -> None:
    root = fake_llm.base_url.removesuffix("/v1")
    result = run_plugin_node(nlp_nodes[NODE], {"prompt": "hi"}, {"base_url": root, "model": "m"})
    assert result["text"] == "Hello from m" and fake_llm.requests[-1]["path"] == "/v1/chat/completions"
    assert fake_llm.requests[-1]["auth"] == ""  # no key variable in this environment: no Authorization header


def test_generate_rows_prompts_once_per_row(
    nlp_nodes: dict[str, PluginNodeDefinition], fake_llm: FakeServer
) -> None:
    import pyarrow as pa

    rows = with_worker_env(nlp_nodes["nlp/generate_rows@1"], **{API_KEY_ENV: API_KEY})
    table = pa.table({"id": [1, 2, 3, 4], "text": ["red", None, "green", "blue"]})
    params = {"base_url": fake_llm.base_url, "model": "echo", "api_key_env": API_KEY_ENV, "concurrency": 2}
    before = len(fake_llm.requests)
    result = run_plugin_node(rows, {"table": table}, {**params, "template": "Name a fruit that is {text}."})
    out = result["table"].column("generated").to_pylist()
    assert out[1] is None and len(fake_llm.requests) == before + 3  # no call for the null text
    assert out[0] == "you said 'Name a fruit that is red.'; auth was 'Bearer [redacted]'"
    assert (
        "blue" in out[3] and "green" in out[2]
    )  # each answer lands on its own row, whatever order they came in
    assert result.progress[-1] == 1.0 and API_KEY not in repr(result.events)

    broken = pa.table({"text": ["fine", "fine", "FAIL here"]})
    with pytest.raises(
        Exception, match=r"nlp/generate_rows@1: row 2 of input port 'table': POST .* answered 500"
    ) as raised:
        run_plugin_node(rows, {"table": broken}, params)
    assert API_KEY not in str(raised.value)
    with pytest.raises(Exception, match=r"nlp/generate_rows@1: output column\(s\) \['id'\] already exist"):
        run_plugin_node(rows, {"table": table}, {**params, "output": "id"})


def test_the_key_can_come_from_the_secrets_store(
    nlp_nodes: dict[str, PluginNodeDefinition], fake_llm: FakeServer, tmp_path: Path
) -> None:
    """`{"secret": "llm-key"}` as param `api_key`: opened in the worker for the run's owner, nowhere stored."""
    from engine.durable import DurableRunner
    from engine.secrets import SecretsService, key_provider
    from engine.store import open_store
    from tests.engine.store.sql_support import dump_tables

    stored_key = "sk-from-the-secrets-store-91b2"
    settings = Settings(home=tmp_path / "home", http_allow=["127.0.0.1"], llm_base_url=fake_llm.base_url)
    document = {
        **WORKFLOW,
        "nodes": {
            "llm": {
                "type": NODE,
                "in": {"prompt": "$inputs.question"},
                "params": {"model": "echo", "api_key": {"secret": "llm-key"}},
            }
        },
    }
    with open_store(settings.resolved_database_url) as store:
        SecretsService(store, key_provider(settings, create=True)).set("alice", "llm-key", stored_key)
        runner = DurableRunner(settings, store=store, catalog=_catalog(nlp_nodes[NODE]), cache=False)
        result = runner.run(document, {"question": "hi"}, owner="alice", timeout=120)
        assert result.ok, result.errors
        assert fake_llm.requests[-1]["auth"] == f"Bearer {stored_key}"
        assert result.outputs["answer"] == "you said 'hi'; auth was 'Bearer [redacted]'"
        assert stored_key not in dump_tables(store)
    assert not [p for p in settings.home.rglob("*") if p.is_file() and stored_key.encode() in p.read_bytes()]
