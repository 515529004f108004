"""A run the engine cannot start at once (Ray unreachable) is neither lost nor duplicated (issue 16).

`POST /v1/runs` records the run before it asks the engine to start it. When Ray is down, the run is already
durable: the answer is `202` with `"deferred": true` (it once was a 503 saying "submit again", so a client that
did got a second run once the sweep started the first). The recovery sweep of a server whose engine works then
starts it, exactly once.

The server without Ray runs in a process of its own (this one may have joined the test session's Ray), with
`RAYWEAVE_RAY_ADDRESS` pointing at a port nothing listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve.config import ServeOptions
from tests.postgres import postgres_database
from tests.serve.api.conftest import add_doc, start_api, wait_for_status
from tests.serve.api.server import free_port

REPO = Path(__file__).resolve().parents[3]

#: Serves the API with the Ray executor and an unreachable Ray, until its stdin closes; prints its URL.
SERVER_WITHOUT_RAY = """
import sys
from pathlib import Path

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.server import serving

home, database_url, ray_address = sys.argv[1:4]
settings = Settings(home=Path(home), database_url=database_url, ray_address=ray_address)
store = open_store(settings.resolved_database_url)
options = ServeOptions(executor="ray", print_admin_key=False, recovery=False)
with serving(create_app(settings, store=store, options=options)) as url:
    print(url, flush=True)
    sys.stdin.read()
store.close()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database of the test: "" for SQLite in the home, or the URL of a PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    with postgres_database("rayweave_deferred") as url:
        yield url


def _serve_without_ray(home: Path, database_url: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_WITHOUT_RAY, str(home), database_url, f"127.0.0.1:{free_port()}"],
        cwd=REPO,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return process


def test_a_run_ray_cannot_start_now_is_accepted_and_started_once_by_the_sweep(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    server = _serve_without_ray(home, database_url)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), "the server without Ray did not start"
        key = (home / "admin.key").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            accepted = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 2, "b": 3}})
            assert accepted.status_code == 202, accepted.text
            body = accepted.json()
            assert body["created"] is True and body["deferred"] is True and body["status"] == "queued"
            run_id = body["id"]
            assert accepted.headers["Location"] == f"/v1/runs/{run_id}"
            assert c.get(f"/v1/runs/{run_id}").json()["status"] == "queued"
    finally:
        server.communicate(timeout=30)  # closes stdin: the server stops

    # Ray is back (here: a server whose engine works) and its sweep starts the run, once.
    options = ServeOptions(
        executor="local",
        print_admin_key=False,
        recovery_stale_after_s=0.5,
        recovery_start_grace_s=0.5,
        recovery_interval_s=0.2,
    )
    api_gen = start_api(home, options, database_url=database_url)
    api = next(api_gen)
    try:
        with api.client() as c:
            wait_for_status(c, run_id, "succeeded")
            assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"total": 5}
            assert [r["id"] for r in c.get("/v1/runs").json()["items"]] == [run_id]
        assert [(r.node_id, r.status) for r in api.store.node_runs.list(run_id)] == [("sum", "succeeded")]
    finally:
        api_gen.close()
