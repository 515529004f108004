"""Hot add and remove through the HTTP API of a served app on the session Ray: a plugin installed with POST is
usable by the next request, a removed version is gone for new workflows (whose diagnostic lists the versions
that exist) while a run compiled before the removal finishes with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.config import ServeOptions
from tests.nodes.plugins.fixtures import write_plugin
from tests.serve.api.conftest import Api, start_api
from tests.serve.api.server import serving

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SCORE = """
import time

from nodes import node

@node
def score(x: float, delay: float = 0.0) -> float:
    time.sleep(delay)
    return x * %s
"""


@pytest.fixture(scope="module")
def ray_api(ray_session: RayConnection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served API whose runs execute on the session Ray (plugin nodes need their runtime environments)."""
    options = ServeOptions(executor="ray", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    yield from start_api(tmp_path_factory.mktemp("plugins-api-home"), options)


def _client(api: Api) -> httpx.Client:
    # Installing builds the plugin's runtime environment on Ray: slower than the default client timeout.
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.admin_key}"}, timeout=300)


def _score_doc(major: int, delay: float = 0.0) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": f"score-{major}",
        "inputs": {"x": {"type": "Float"}},
        "nodes": {"s": {"type": f"acme/score@{major}", "in": {"x": "$inputs.x", "delay": {"value": delay}}}},
        "outputs": {"y": "s"},
    }


def _start(c: httpx.Client, doc: dict[str, Any], x: float) -> str:
    r = c.post("/v1/runs", json={"workflow": doc, "inputs": {"x": x}})
    assert r.status_code == 202, r.text
    run_id: str = r.json()["id"]
    return run_id


def _finished(c: httpx.Client, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = c.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def _outputs(c: httpx.Client, run_id: str) -> dict[str, Any]:
    outputs: dict[str, Any] = c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"]
    return outputs


def _messages(c: httpx.Client, doc: dict[str, Any]) -> list[str]:
    r = c.post("/v1/workflows/validate", json={"workflow": doc})
    assert r.status_code == 200, r.text
    # The hint says what to do: for an unknown node type, the versions that exist.
    return [f"{d['message']}; {d['hint']}" for d in r.json()["diagnostics"] if d["severity"] == "error"]


def test_install_run_remove_while_serving(ray_api: Api, tmp_path: Path) -> None:
    one = write_plugin(tmp_path, "acme", "1.0.0", SCORE % 10, package="acme_score")
    two = write_plugin(tmp_path, "acme", "2.0.0", SCORE % 100, package="acme_score")
    with _client(ray_api) as c:
        assert _messages(c, _score_doc(1)), "acme/score@1 must be unknown before the install"
        for source in (one, two):
            installed = c.post("/v1/plugins", json={"source": str(source)})
            assert installed.status_code == 201, installed.text
        listed = c.get("/v1/plugins").json()["items"]
        assert [(p["name"], p["version"], p["loaded"], p["error"]) for p in listed] == [
            ("acme", "1.0.0", True, None),
            ("acme", "2.0.0", True, None),
        ]
        assert _messages(c, _score_doc(1)) == [] and _messages(c, _score_doc(2)) == []
        assert c.get("/v1/nodes/acme/score@1").status_code == 200

        quick = _start(c, _score_doc(1), 2.0)
        both = _start(c, _score_doc(2), 2.0)
        assert _finished(c, quick)["status"] == "succeeded"
        assert _outputs(c, quick) == {"y": 20.0}
        assert _finished(c, both)["status"] == "succeeded"
        assert _outputs(c, both) == {"y": 200.0}

        # Compiled before the removal: it finishes with the removed version's code.
        slow = _start(c, _score_doc(1, delay=3.0), 3.0)
        assert c.delete("/v1/plugins/acme/1.0.0").status_code == 204
        assert c.get("/v1/nodes/acme/score@1").status_code == 404
        (message,) = _messages(c, _score_doc(1))
        assert "acme/score@1" in message and "versions that exist are acme/score@2 (version 2.0.0)" in message
        assert _messages(c, _score_doc(2)) == []
        refused = c.post("/v1/runs", json={"workflow": _score_doc(1), "inputs": {"x": 1.0}})
        assert refused.status_code == 422, refused.text
        run = _finished(c, slow)
        assert run["status"] == "succeeded", run
        assert _outputs(c, slow) == {"y": 30.0}

        assert c.delete("/v1/plugins/acme/2.0.0").status_code == 204
        assert c.get("/v1/plugins").json()["items"] == []
        (message,) = _messages(c, _score_doc(2))
        assert "'acme/score@2' is not in the catalog" in message and "versions that exist" not in message
        gone = c.delete("/v1/plugins/acme/2.0.0")
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("application/problem+json")
        assert "acme" in gone.json()["detail"]


def test_a_plugin_that_cannot_load_is_refused_and_not_kept(ray_api: Api, tmp_path: Path) -> None:
    broken = write_plugin(tmp_path, "broken", "1.0.0", "import no_such_module_anywhere\n")
    with _client(ray_api) as c:
        r = c.post("/v1/plugins", json={"source": str(broken)})
        listed = c.get("/v1/plugins").json()["items"]
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "broken" in detail and "no_such_module_anywhere" in detail
    assert [p["name"] for p in listed if p["name"] == "broken"] == []
    assert not (ray_api.home / "plugins" / "broken" / "1.0.0").exists()


def test_a_restarted_server_loads_the_installed_plugins(ray_api: Api, tmp_path: Path) -> None:
    source = write_plugin(tmp_path, "kept", "1.0.0", SCORE % 3, package="kept_score")
    with _client(ray_api) as c:
        assert c.post("/v1/plugins", json={"source": str(source)}).status_code == 201
    options = ServeOptions(executor="ray", recovery=False, print_admin_key=False)
    restarted = start_api(ray_api.home, options)
    again = next(restarted)
    try:
        with _client(again) as c:
            listed = c.get("/v1/plugins").json()["items"]
            doc = _score_doc(1)
            doc["nodes"]["s"]["type"] = "kept/score@1"
            assert _messages(c, doc) == []
            assert ("kept", "1.0.0", True) in [(p["name"], p["version"], p["loaded"]) for p in listed]
            assert c.delete("/v1/plugins/kept/1.0.0").status_code == 204
    finally:
        restarted.close()


def _messages_until(c: httpx.Client, doc: dict[str, Any], done: Any, timeout: float = 30) -> list[str]:
    # Another replica notices a change of the plugin records within its check interval (about a second).
    deadline = time.monotonic() + timeout
    while True:
        messages = _messages(c, doc)
        if done(messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.2)


def test_install_and_remove_reach_every_replica(ray_session: RayConnection, tmp_path: Path) -> None:
    one = write_plugin(tmp_path / "src", "multi", "1.0.0", SCORE % 10, package="multi_score")
    two = write_plugin(tmp_path / "src", "multi", "2.0.0", SCORE % 100, package="multi_score")
    home = tmp_path / "home"
    options = ServeOptions(
        executor="ray", recovery=False, print_admin_key=False, rate_per_s=10_000, burst=10_000
    )
    first = start_api(home, options)
    a = next(first)
    second = start_api(home, options)
    b = next(second)
    doc1, doc2 = _score_doc(1), _score_doc(2)
    for doc in (doc1, doc2):
        doc["nodes"]["s"]["type"] = doc["nodes"]["s"]["type"].replace("acme", "multi")
    try:
        with _client(a) as ca, _client(b) as cb:
            assert _messages(cb, doc1), "multi/score@1 must be unknown before the install"
            for source in (one, two):
                assert ca.post("/v1/plugins", json={"source": str(source)}).status_code == 201
            assert _messages_until(cb, doc1, lambda m: m == []) == []
            assert _messages(cb, doc2) == []
            run = _start(cb, doc2, 2.0)
            finished = _finished(cb, run)
            assert finished["status"] == "succeeded"
            assert _outputs(cb, run) == {"y": 200.0}
            # The exact plugin version that served the run is recorded with it.
            assert finished["plugin_versions"] == {"multi/score@2": "multi@2.0.0"}

            assert cb.delete("/v1/plugins/multi/1.0.0").status_code == 204
            (message,) = _messages_until(ca, doc1, lambda m: m != [])
            assert "multi/score@1" in message
            assert "versions that exist are multi/score@2 (version 2.0.0)" in message
            assert _messages(ca, doc2) == []

            assert cb.delete("/v1/plugins/multi/2.0.0").status_code == 204
            (message,) = _messages_until(ca, doc2, lambda m: m != [])
            assert "no version of multi/score is installed; installed plugins: none" in message
    finally:
        second.close()
        first.close()


def test_plugins_in_the_plugin_dirs_are_served(ray_session: RayConnection, tmp_path: Path) -> None:
    write_plugin(tmp_path / "dirs", "found", "1.0.0", SCORE % 7, package="found_score")
    settings = Settings(home=tmp_path / "home", plugin_dirs=[tmp_path / "dirs"])
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(executor="ray", recovery=False, print_admin_key=False)
    doc = _score_doc(1)
    doc["nodes"]["s"]["type"] = "found/score@1"
    try:
        with serving(create_app(settings, store=store, options=options)) as url:
            api = Api(url, settings.home, store, (settings.home / "admin.key").read_text().strip())
            with _client(api) as c:
                assert _messages(c, doc) == []
                run = _start(c, doc, 2.0)
                assert _finished(c, run)["status"] == "succeeded"
                assert _outputs(c, run) == {"y": 14.0}
    finally:
        store.close()


def test_a_plugins_types_are_served_checked_and_validated(ray_api: Api, tmp_path: Path) -> None:
    from tests.nodes.plugins.test_plugin_types import _guide_plugin, _section

    namespace: dict[str, Any] = {}
    exec(compile(_section()[2], "writing-plugins.md", "exec"), namespace)
    source = _guide_plugin(tmp_path)
    with _client(ray_api) as c:
        assert c.post("/v1/plugins", json={"source": str(source)}).status_code == 201
        try:
            nominal = {t["name"]: t for t in c.get("/v1/types").json()["nominal"]}
            assert nominal["Celsius"]["parent"] == "Float"
            check = c.post("/v1/types/check", json={"source": "Celsius", "target": "Kelvin"}).json()
            assert check["coercion"]["kind"] == "implicit", check
            typed = dict(namespace["TEMPERATURES"], inputs={"celsius": {"type": "Celsius"}})
            valid = c.post("/v1/workflows/validate", json={"workflow": typed}).json()
            assert valid["valid"] is True, valid
            ok = _finished(c, _run(c, typed, 20.0))
            assert ok["status"] == "succeeded" and _outputs(c, ok["id"]) == {"label": "293.15 K"}
            cold = _finished(c, _run(c, namespace["TEMPERATURES"], -300.0))
            read = {n["node"]: n for n in cold["nodes"]}["read"]
            assert cold["status"] == "failed" and "rejected by its validator" in read["error"]["message"]
        finally:
            c.delete("/v1/plugins/acme-temp/1.0.0")


def _run(c: httpx.Client, doc: dict[str, Any], celsius: float) -> str:
    r = c.post("/v1/runs", json={"workflow": doc, "inputs": {"celsius": celsius}})
    assert r.status_code == 202, r.text
    run_id: str = r.json()["id"]
    return run_id
