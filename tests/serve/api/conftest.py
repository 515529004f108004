"""A served API (uvicorn on 127.0.0.1, in-process executor) per test module, and helpers to make keys."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.workloads import sleep_chain
from cluster.settings import Settings
from engine.store import Store, open_store
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.server import serving


def add_doc(name: str = "add-two") -> dict[str, Any]:
    """A valid workflow: total = a + b."""
    return {
        "format": "rayweave.workflow/1",
        "name": name,
        "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
        "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}}},
        "outputs": {"total": "sum"},
    }


def sleep_chain_doc(steps: int, seconds: float) -> dict[str, Any]:
    """A chain of `steps` sleep nodes passing `x` through; produces many events over `steps * seconds`."""
    return sleep_chain(steps, seconds, name="sleepy")


def wait_for_status(client: httpx.Client, run_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll `GET /v1/runs/{run_id}` until the run is in `status`; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] == status:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']!r} after {timeout} s, expected {status!r}")
        time.sleep(0.05)


@dataclass
class Api:
    """A served app: its URL, home, store and admin key."""

    url: str
    home: Path
    store: Store
    admin_key: str

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client authenticated with `key` (the admin key by default; "" for none)."""
        secret = self.admin_key if key is None else key
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def key(
        self, scopes: Sequence[str], *, username: str = "alice", expires_at: datetime | None = None
    ) -> str:
        """A new API key of `username` (created if new) with `scopes`."""
        try:
            user = self.store.users.get_by_username(username)
        except KeyError:
            user = self.store.users.create(username)
        _record, secret = self.store.api_keys.create(user.id, scopes=scopes, expires_at=expires_at)
        return secret


ALL_USER_SCOPES = (
    "workflows:read",
    "workflows:write",
    "runs:read",
    "runs:write",
    "plugins:admin",
    "keys:admin",
    "models:read",
    "models:write",
    "models:infer",
    "secrets:read",
    "secrets:write",
    "webhooks:read",
    "webhooks:write",
)


def start_api(
    home: Path, options: ServeOptions, *, database_url: str = "", **settings_fields: Any
) -> Generator[Api, None, None]:
    """Serve a fresh installation under `home` until the generator is closed (on `database_url` when given,
    e.g. a PostgreSQL database of the test; SQLite in `home` otherwise); `settings_fields` set more `Settings`."""
    settings = Settings(home=home, database_url=database_url, **settings_fields)
    store = open_store(settings.resolved_database_url)
    app = create_app(settings, store=store, options=options)
    try:
        with serving(app) as url:
            yield Api(url, home, store, (home / "admin.key").read_text().strip())
    finally:
        store.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One served API for the module: in-process executor, generous rate limit."""
    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        # The modules send many bad credentials from 127.0.0.1 on purpose (test_auth_failures tests the limit).
        auth_failures_per_s=10_000,
        auth_failure_burst=10_000,
        print_admin_key=False,
    )
    yield from start_api(tmp_path_factory.mktemp("api-home"), options)
