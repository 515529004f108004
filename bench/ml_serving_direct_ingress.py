"""Experiment behind docs/adr/014: Ray Serve 2.60's direct ingress against its Python HTTP proxy.

With `RAY_SERVE_ENABLE_DIRECT_INGRESS=1` (the replica half of the HAProxy mode, `RAY_SERVE_ENABLE_HA_PROXY=1`)
each ingress replica opens its own HTTP server on a port the controller allocates (30000-31000); HAProxy would
route to those ports. The flag is read once per process when Ray Serve is imported, so it must be in the
environment before Ray starts: this script runs on its own embedded Ray (loopback only). It deploys the plain
Serve deployment of `ml_serving_bench` (1 replica) and times single-row requests of one keep-alive client
through the proxy, through the replica's direct port, and through rayweave's fast path, in the same run.

    .venv/bin/python bench/ml_serving_direct_ingress.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The port range Serve allocates direct-ingress ports from (RAY_SERVE_DIRECT_INGRESS_MIN/MAX_HTTP_PORT).
DIRECT_PORTS = range(30000, 31001)


def listening_direct_ports() -> list[tuple[str, int]]:
    """(address, port) of the sockets listening in the direct-ingress range (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A":  # LISTEN
            address, port_hex = parts[1].split(":")
            port = int(port_hex, 16)
            if port in DIRECT_PORTS:
                found.append((".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)), port))
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison and print it."""
    import httpx
    from ml_serving_bench import COLUMNS, latency, plain_serve_app
    from ray import serve

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.store import open_store
    from serve.models import manager
    from serve.models.fastpath import free_port
    from serve.models.sample import iris_rows, register_iris

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        uri = settings.resolved_mlflow_tracking_uri
        version = register_iris(uri, "iris")
        ensure_ray(settings, num_cpus=2, include_dashboard=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        try:
            serve.run(
                plain_serve_app(uri, f"models:/iris/{version.version}", 1),
                name="plain",
                route_prefix="/plain",
            )
            time.sleep(2)
            direct = listening_direct_ports()
            results["direct ingress sockets"] = [f"{a}:{p}" for a, p in direct]
            row = iris_rows(1)[0]
            records = json.dumps([row]).encode()
            targets = [("plain Ray Serve via its proxy", f"http://127.0.0.1:{port}/plain")]
            targets += [
                (f"plain Ray Serve via direct ingress {p}", f"http://127.0.0.1:{p}/plain") for _, p in direct
            ]
            for label, url in targets:
                client = httpx.Client(headers={"content-type": "application/json"})
                results[label] = latency(lambda c=client, u=url: c.post(u, content=records), args.requests)
            store = open_store(settings.resolved_database_url)
            _key, secret = store.api_keys.create(store.users.create("bench").id, scopes=["models:infer"])
            deployed = manager.deploy(settings, manager.DeployRequest("iris", str(version.version)))
            body = json.dumps(
                {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [row[c]]} for c in COLUMNS]}
            ).encode()
            fast = httpx.Client(
                headers={"content-type": "application/json", "Authorization": f"Bearer {secret}"}
            )
            url = f"{deployed['endpoint']}/v2/models/iris/infer"
            results["rayweave fast path"] = latency(lambda: fast.post(url, content=body), args.requests)
            store.close()
        finally:
            serve.shutdown()
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
