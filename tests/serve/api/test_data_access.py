"""Issue 16, critical 2: a tenant's runs reach only the data roots and public addresses, through the real API.

The attacker holds a key with the single scope `runs:write` and posts inline workflows whose built-in file and
HTTP nodes aim at the installation's secrets, the machine and the API itself. The server is configured as an
operator would: the default data root (`{home}/data`) and `localhost` allowed for outbound HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.settings import Settings
from engine.store import open_store
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.server import serving


@dataclass
class Served:
    url: str
    home: Path
    root: Path
    admin: httpx.Client
    attacker: httpx.Client

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("access-home")
    settings = Settings(home=home, http_allow=["localhost"])
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    try:
        with serving(create_app(settings, store=store, options=options)) as url:
            admin_key = (home / "admin.key").read_text().strip()
            admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
            made = admin.post("/v1/keys", json={"username": "mallory", "scopes": ["runs:write"]})
            assert made.status_code == 201, made.text
            attacker = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {made.json()['key']}"}, timeout=30
            )
            try:
                yield Served(url, home, home / "data", admin, attacker)
            finally:
                admin.close()
                attacker.close()
    finally:
        store.close()


def _doc(nodes: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    return {"format": "rayweave.workflow/1", "name": "probe", "nodes": nodes, "outputs": outputs}


def _read(path: str) -> dict[str, Any]:
    return _doc(
        {"load": {"type": "builtin/read_csv@1", "in": {"path": {"value": path}}}}, {"t": "load.table"}
    )


def _fetch(url: str) -> dict[str, Any]:
    return _doc(
        {
            "get": {
                "type": "builtin/http_request@1",
                "in": {"url": {"value": url}},
                "params": {"timeout_s": 3},
            }
        },
        {"status": "get.status", "text": "get.text"},
    )


def _write(path: str) -> dict[str, Any]:
    return _doc(
        {
            "rows": {"type": "builtin/records_to_table@1", "in": {"value": {"value": [{"v": 1}, {"v": 2}]}}},
            "save": {"type": "builtin/write_parquet@1", "in": {"table": "rows", "path": {"value": path}}},
        },
        {"path": "save.path"},
    )


def _run(served: Served, doc: dict[str, Any]) -> dict[str, Any]:
    """Post ``doc`` with the attacker's key; the run as the admin sees it once it ended."""
    posted = served.attacker.post("/v1/runs", json={"workflow": doc, "inputs": {}})
    assert posted.status_code == 202, posted.text
    run_id = posted.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = served.admin.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            run["outputs"] = served.admin.get(f"/v1/runs/{run_id}/outputs").json()["outputs"]
            return run
        assert time.monotonic() < deadline, f"run {run_id} did not end: {run}"
        time.sleep(0.05)


def _refused(run: dict[str, Any], node: str) -> str:
    assert run["status"] == "failed", run
    error = next(n for n in run["nodes"] if n["node"] == node)["error"]
    assert error["type"] == "AccessDeniedError", error
    assert run["outputs"] == {}
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    "target",
    [
        "{home}/admin.key",
        "{home}/rayweave.db",
        "{home}/data/../admin.key",
        "/proc/self/environ",
        "/etc/passwd",
    ],
)
def test_a_runs_write_key_cannot_read_outside_the_data_root(served: Served, target: str) -> None:
    path = target.format(home=served.home)
    message = _refused(_run(served, _read(path)), "load")
    assert "builtin/read_csv@1: input port 'path'" in message and repr(path) in message
    assert "RAYWEAVE_DATA_ROOTS" in message
    secret = (served.home / "admin.key").read_text().strip()
    assert secret not in message


def test_a_symlink_in_the_data_root_does_not_lead_out(served: Served) -> None:
    link = served.root / "innocent.csv"
    link.symlink_to(served.home / "admin.key")
    try:
        _refused(_run(served, _read(str(link))), "load")
    finally:
        link.unlink()


def test_files_in_the_data_root_are_read_and_written(served: Served) -> None:
    (served.root / "points.csv").write_text("x\n1\n2\n")
    read = _run(served, _read(str(served.root / "points.csv")))
    assert read["status"] == "succeeded", read
    target = served.root / "out" / "v.parquet"
    written = _run(served, _write(str(target)))
    assert written["status"] == "succeeded", written
    assert pq.read_table(target).equals(pa.table({"v": [1, 2]}))


@pytest.mark.parametrize(
    "target", ["{home}/evil.parquet", "{home}/data/../cache/x.parquet", "{tmp}/x.parquet"]
)
def test_a_runs_write_key_cannot_write_outside_the_data_root(
    served: Served, target: str, tmp_path: Path
) -> None:
    path = target.format(home=served.home, tmp=tmp_path)
    message = _refused(_run(served, _write(path)), "save")
    assert "builtin/write_parquet@1: input port 'path'" in message
    assert not Path(path).exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/v1/keys",
        "http://127.0.0.1:5432/",
        "http://2130706433:{port}/v1/health",
        "http://0x7f.1:{port}/v1/health",
        "http://[::ffff:127.0.0.1]:{port}/v1/health",
        "http://[::1]:{port}/v1/health",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_a_runs_write_key_cannot_reach_internal_addresses(served: Served, url: str) -> None:
    message = _refused(_run(served, _fetch(url.format(port=served.port))), "get")
    assert "internal address" in message and "RAYWEAVE_HTTP_ALLOW" in message


def test_an_allowlisted_host_is_reached(served: Served) -> None:
    run = _run(served, _fetch(f"http://localhost:{served.port}/v1/health"))
    assert run["status"] == "succeeded", run
    assert run["outputs"]["status"] == 200
