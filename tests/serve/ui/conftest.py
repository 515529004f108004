"""One API on loopback for the web UI's tests (its start-up is the slow part): in-process executor, two stored
workflows, served by uvicorn on 127.0.0.1 for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.server import serving


def _doc(name: str, inputs: dict[str, Any], nodes: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": name,
        "inputs": inputs,
        "nodes": nodes,
        "outputs": outputs,
    }


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The API on loopback with two stored workflows; yields its URL, admin key, workflow ids, store and app."""
    home = tmp_path_factory.mktemp("ui-browser-home")
    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(executor="local", print_admin_key=False, rate_per_s=10_000, burst=10_000)
    app = create_app(settings, store=store, options=options)
    try:
        with serving(app) as url:
            key = (home / "admin.key").read_text().strip()
            ids: dict[str, str] = {}
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
                chain = {
                    f"s{i}": {
                        "type": "builtin/sleep@1",
                        "in": {"value": "$inputs.x" if i == 0 else f"s{i - 1}.out"},
                        "params": {"seconds": 0.4},
                    }
                    for i in range(3)
                }
                docs = {
                    "slow-chain": _doc("slow-chain", {"x": {"type": "Int"}}, chain, {"x": "s2.out"}),
                    "mixed-types": _doc(
                        "mixed-types",
                        {"n": {"type": "Int"}, "s": {"type": "String"}},
                        {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.n", "b": {"value": 2}}}},
                        {"total": "sum.out"},
                    ),
                }
                for name, doc in docs.items():
                    created = api.post("/v1/workflows", json={"workflow": doc})
                    assert created.status_code == 201, created.text
                    ids[name] = created.json()["workflow_id"]
            yield {"url": url, "key": key, "ids": ids, "store": store, "app": app}
    finally:
        store.close()
