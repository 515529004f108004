"""Plugins over the API: install from a directory on the server, list, remove; bad sources are 400s."""

from __future__ import annotations

from pathlib import Path

from nodes.plugins.scaffold import new_plugin
from tests.serve.api.conftest import Api


def test_install_list_remove(api: Api, tmp_path: Path) -> None:
    source = new_plugin("greeter", tmp_path)
    with api.client() as c:
        installed = c.post("/v1/plugins", json={"source": str(source)})
        assert installed.status_code == 201, installed.text
        plugin = installed.json()
        assert plugin["name"] == "greeter" and plugin["enabled"] is True
        assert (api.home / "plugins" / "greeter" / plugin["version"]).is_dir()
        listed = c.get("/v1/plugins").json()["items"]
        assert [(p["name"], p["version"]) for p in listed] == [("greeter", plugin["version"])]
        again = c.post("/v1/plugins", json={"source": str(source)})
        assert again.status_code == 400  # the same version is installed; replace=true reinstalls it
        assert c.post("/v1/plugins", json={"source": str(source), "replace": True}).status_code == 201
        assert c.delete(f"/v1/plugins/greeter/{plugin['version']}").status_code == 204
        assert c.get("/v1/plugins").json()["items"] == []
        assert c.delete(f"/v1/plugins/greeter/{plugin['version']}").status_code == 404


def test_sources_are_checked_before_anything_is_copied(api: Api, tmp_path: Path) -> None:
    (tmp_path / "not-a-plugin").mkdir()
    with api.client() as c:
        for source in ["", "relative/dir", str(tmp_path / "missing"), str(tmp_path / "not-a-plugin"), "/"]:
            r = c.post("/v1/plugins", json={"source": source})
            assert r.status_code == 400, source
            assert r.headers["content-type"].startswith("application/problem+json")
    assert not (api.home / "plugins" / ".staging").exists() or not any(
        (api.home / "plugins" / ".staging").iterdir()
    )
