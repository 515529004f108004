"""A served API (uvicorn on 127.0.0.1, real sockets) for the co-editing tests, and helpers to run clients."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.collab import CollabRooms
from serve.config import ServeOptions
from tests.serve.api.conftest import Api, add_doc
from tests.serve.api.server import serving

T = TypeVar("T")

OPTIONS = ServeOptions(
    executor="local",
    rate_per_s=10_000,
    burst=10_000,
    auth_failures_per_s=10_000,
    auth_failure_burst=10_000,
    print_admin_key=False,
)


@dataclass
class Served(Api):
    """A served API and its app (whose `state.collab` holds the server's rooms)."""

    app: Any = None

    @property
    def rooms(self) -> CollabRooms:
        """The server's collaboration rooms."""
        rooms: CollabRooms = self.app.state.collab
        return rooms


def start_served(home: Path, event_bus: str = "") -> Iterator[Served]:
    """Serve an installation under `home` (SQLite there) until the generator is closed; a second server on
    the same `home` is another replica of the same installation. `event_bus`: `RAYWEAVE_EVENT_BUS`."""
    settings = Settings(home=home, event_bus=event_bus)
    store = open_store(settings.resolved_database_url)
    app = create_app(settings, store=store, options=OPTIONS)
    try:
        with serving(app) as url:
            yield Served(url, home, store, (home / "admin.key").read_text().strip(), app)
    finally:
        store.close()


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One served API for the co-editing tests (each test makes its own workflows and users)."""
    yield from start_served(tmp_path_factory.mktemp("collab-home"))


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run a test's client code on a fresh event loop, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def new_workflow(api: Api, key: str | None = None, document: dict[str, Any] | None = None) -> str:
    """Create a workflow (the add-two one by default) as `key`'s user; returns its id."""
    with api.client(key) as c:
        r = c.post("/v1/workflows", json={"workflow": document or add_doc()})
        assert r.status_code == 201, r.text
        return str(r.json()["workflow_id"])


def get_latest(api: Api, workflow_id: str) -> httpx.Response:
    """GET the latest version of a workflow as the admin."""
    with api.client() as c:
        return c.get(f"/v1/workflows/{workflow_id}")
