"""One served installation for the model-serving tests: the API under uvicorn (local executor) on the session's
Ray, an iris model registered in the home's MLflow (SQLite) from a real rayweave run's id, deployed on Ray Serve
with two replicas. The installation's event bus is the NATS JetStream on 127.0.0.1:4222 (a subject prefix of
its own, its stream deleted afterwards), as a cluster's is: model replicas announce their scale changes there.
Serve is shut down when the package's tests end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cluster.settings import Settings
from serve.config import ServeOptions
from tests.serve.api.conftest import Api, add_doc, start_api, wait_for_status


@dataclass
class Served:
    """The served installation: its API, settings, the rayweave run that "trained" the model, the deployment."""

    api: Api
    settings: Settings
    run_id: str
    version: str
    deployment: dict[str, Any]

    @property
    def endpoint(self) -> str:
        """The model's fast path."""
        return str(self.deployment["endpoint"])

    def fast(self, key: str | None = None) -> httpx.Client:
        """A client of the fast path with `key` (the admin key by default; "" for none)."""
        secret = self.api.admin_key if key is None else key
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.endpoint, headers=headers, timeout=30)


def lineage_tags(run_id: str) -> dict[str, str]:
    """The tags a rayweave training node puts on its MLflow run."""
    return {
        "rayweave.run_id": run_id,
        "rayweave.node_id": "train",
        "rayweave.workflow": "add-two",
        "rayweave.workflow_version": "1",
    }


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory, ray_session: Any) -> Iterator[Served]:
    from ray import serve

    from serve.models.sample import register_iris

    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        auth_failures_per_s=10_000,
        auth_failure_burst=10_000,
        print_admin_key=False,
    )
    home = tmp_path_factory.mktemp("models-home")
    bus_url = f"nats://127.0.0.1:4222?prefix=rwtest_{uuid.uuid4().hex[:12]}"
    try:
        for api in start_api(home, options, event_bus=bus_url):
            with api.client() as c:
                r = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}})
                assert r.status_code in (201, 202), r.text
                run = r.json()
                wait_for_status(c, run["id"], "succeeded")
                settings = Settings(home=home, event_bus=bus_url)
                version = register_iris(
                    settings.resolved_mlflow_tracking_uri,
                    "iris",
                    artifacts_uri=str(home / "mlartifacts"),
                    tags=lineage_tags(run["id"]),
                )
                r = c.post(
                    "/v1/models",
                    json={"model": f"models:/iris/{version.version}", "replicas": 2},
                    timeout=240,
                )
                assert r.status_code == 201, r.text
                yield Served(api, settings, run["id"], str(version.version), r.json())
    finally:
        serve.shutdown()
        _forget_bus(bus_url)


def _forget_bus(url: str) -> None:
    """Close this process's connection to the bus at `url` and delete the stream of its prefix."""
    from engine.bus import close_shared
    from engine.bus.nats import NatsBus

    close_shared(url)  # the runs of the in-process executor published through it
    cleaner = NatsBus(url)
    if cleaner.wait_connected(5):
        cleaner.delete_stream()
    cleaner.close()
