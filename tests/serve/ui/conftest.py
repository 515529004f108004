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
                        # The last node waits longest: the test sees it running, then succeeded, live.
                        "params": {"seconds": 1.5 if i == 2 else 0.2},
                    }
                    for i in range(3)
                }
                # s1b is s1 again: the compiler runs it once, as s1 (the page shows it with s1's state).
                chain["s1b"] = dict(chain["s1"])
                docs = {
                    "slow-chain": _doc(
                        "slow-chain", {"x": {"type": "Int"}}, chain, {"x": "s2.out", "y": "s1b.out"}
                    ),
                    "mixed-types": _doc(
                        "mixed-types",
                        {"n": {"type": "Int"}, "s": {"type": "String"}},
                        {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.n", "b": {"value": 2}}}},
                        {"total": "sum.out"},
                    ),
                }
                docs["fails"] = _doc(
                    "fails",
                    {"x": {"type": "Int"}},
                    {
                        "boom": {
                            "type": "builtin/fail@1",
                            "in": {"value": "$inputs.x"},
                            "params": {"message": "<b>no</b>"},
                        }
                    },
                    {"out": "boom.out"},
                )
                docs["versioned"] = docs["mixed-types"] | {"name": "versioned"}
                docs["shared"] = docs["mixed-types"] | {"name": "shared"}
                for name, doc in docs.items():
                    created = api.post("/v1/workflows", json={"workflow": doc})
                    assert created.status_code == 201, created.text
                    ids[name] = created.json()["workflow_id"]
                # Version 2 of "versioned": the constant of sum.b becomes a wire from the input n; a node more.
                second = docs["versioned"] | {
                    "nodes": {
                        "sum": {"type": "builtin/add@1", "in": {"a": "$inputs.n", "b": "$inputs.n"}},
                        "neg": {"type": "builtin/negate@1", "in": {"x": "sum.out"}},
                    },
                    "outputs": {"total": "neg.out"},
                }
                saved = api.put(
                    f"/v1/workflows/{ids['versioned']}",
                    json={"workflow": second},
                    headers={"If-Match": '"1"'},
                )
                assert saved.status_code == 200, saved.text
            yield {"url": url, "key": key, "ids": ids, "store": store, "app": app}
    finally:
        store.close()
