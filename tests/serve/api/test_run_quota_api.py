"""`rayweave serve --max-active-runs`: a user at the quota gets a 429 problem, and nothing is recorded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve.config import ServeOptions
from tests.serve.api.conftest import Api, start_api, wait_for_status


def _sleepy(seconds: float) -> dict[str, object]:
    return {
        "format": "rayweave.workflow/1",
        "name": "sleepy",
        "nodes": {
            "s": {"type": "builtin/sleep@1", "in": {"value": {"value": 1}}, "params": {"seconds": seconds}}
        },
        "outputs": {"out": "s.out"},
    }


@pytest.fixture(scope="module")
def quota_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    options = ServeOptions(
        executor="local", rate_per_s=1000, burst=1000, print_admin_key=False, max_active_runs=1
    )
    yield from start_api(tmp_path_factory.mktemp("quota-home"), options)


def test_a_user_at_the_quota_gets_429_and_others_do_not(quota_api: Api) -> None:
    alice = quota_api.key(["runs:read", "runs:write"], username="alice")
    bob = quota_api.key(["runs:read", "runs:write"], username="bob")
    with quota_api.client(alice) as a, quota_api.client(bob) as b:
        first = a.post("/v1/runs", json={"workflow": _sleepy(3.0), "inputs": {}})
        assert first.status_code == 202, first.text
        refused = a.post("/v1/runs", json={"workflow": _sleepy(0.0), "inputs": {}})
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"] == "5"
        assert "the most allowed at once (1)" in refused.json()["detail"]
        assert len(a.get("/v1/runs").json()["items"]) == 1  # the refused run was not recorded
        assert b.post("/v1/runs", json={"workflow": _sleepy(0.0), "inputs": {}}).status_code == 202
        wait_for_status(a, first.json()["id"], "succeeded", timeout=30)
        assert a.post("/v1/runs", json={"workflow": _sleepy(0.0), "inputs": {}}).status_code == 202
