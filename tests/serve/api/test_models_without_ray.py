"""A server that is not on Ray (in-process, local executor) answers the model routes without starting a Ray.

Measured in a fresh Python process, so a Ray another test of the session connected cannot hide a Ray started by
the request: the process serves the API in-process (uvicorn on loopback, SQLite), lists the models, and reports
how long that took, whether Ray is connected afterwards and whether a raylet or GCS server appeared among its
child processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys, time
from pathlib import Path

import httpx
import psutil

from tests.serve.api.conftest import start_api
from serve.config import ServeOptions

def ray_processes():
    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            names.append(" ".join(child.cmdline()))
        except psutil.Error:
            continue
    return [n for n in names if "raylet" in n or "gcs_server" in n]

options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
api = start_api(Path(sys.argv[1]), options)
server = next(api)
out = {}
with server.client() as client:
    client.get("/v1/health").raise_for_status()
    client.get("/v1/workflows").raise_for_status()  # the server's first authenticated request is not timed
    for label in ("first", "second"):
        started = time.perf_counter()
        answer = client.get("/v1/models")
        out[label] = {"status": answer.status_code, "body": answer.json(),
                      "seconds": time.perf_counter() - started}
    deploy = client.post("/v1/models", json={"model": "models:/iris/1"})
    out["deploy"] = {"status": deploy.status_code, "body": deploy.json()}
    show = client.get("/v1/models/iris")
    out["show"] = {"status": show.status_code}
api.close()
ray = sys.modules.get("ray")
out["ray_initialized"] = bool(ray is not None and ray.is_initialized())
out["ray_processes"] = ray_processes()
print(json.dumps(out))
"""


def test_listing_models_without_ray_is_quick_and_starts_no_ray(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for label in ("first", "second"):
        assert out[label]["status"] == 200, out[label]
        assert out[label]["body"] == {"items": []}
        # Starting a Ray takes 5 s and more here: a listing that waited for one would show it.
        assert out[label]["seconds"] < 2.5, f"GET /v1/models took {out[label]['seconds']:.2f} s without Ray"
    # Deploying needs Ray: a clear 503 naming what to do, and no Ray started for it either.
    assert out["deploy"]["status"] == 503, out["deploy"]
    assert "Ray" in out["deploy"]["body"]["detail"]
    assert out["show"]["status"] == 404  # neither served nor registered
    assert out["ray_initialized"] is False
    assert out["ray_processes"] == []
