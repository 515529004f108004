"""Benchmark of the permission check per request: authenticate an API key and authorize a scope, in-process.

Builds the API app on a fresh installation (SQLite under a temporary home, or `--database-url`, e.g. the test
PostgreSQL server), creates a key, warms up, then times N calls of exactly what `require(scope)` does for each
request (`serve.auth.authenticate` + `serve.auth.authorize`: the key read joined with its user, tenant and role,
the role-narrowed scope check, the rate bucket), and prints p50/p95/p99 in milliseconds: once with the server's verified-key cache warm (a key verified
in the last 0.5 s, `serve.key_cache`; the store is read again every 0.5 s, which shows in p99/max), once cold
(the cache emptied before every check: the key row and user read from the store each time).

    .venv/bin/python bench/auth_bench.py [--requests 2000] [--database-url URL] [--pre-ping] [--json]

`--pre-ping` (PostgreSQL) measures the pool as it was before: SQLAlchemy's pre-ping (a round trip per checkout)
instead of `engine.store.db`'s checkout check, for a before/after comparison on the same machine and load.

Target (issue 18): p95 < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(requests: int, database_url: str, *, pre_ping: bool = False) -> dict[str, dict[str, float]]:
    """Time `requests` permission checks, cache warm and cold; returns percentiles in milliseconds."""
    from fastapi.testclient import TestClient
    from starlette.datastructures import Headers

    from cluster.settings import Settings
    from engine.store import open_store
    from serve.app import create_app
    from serve.auth import authenticate, authorize
    from serve.config import ServeOptions

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=database_url)
        store = open_store(settings.resolved_database_url)
        if pre_ping:
            _use_pre_ping(store)
        options = ServeOptions(executor="local", rate_per_s=1e9, burst=10**9, print_admin_key=False)
        app = create_app(settings, store=store, options=options)
        try:
            with TestClient(app):  # runs the lifespan: the server context exists from here on
                ctx = app.state.rayweave
                user = store.users.create(f"bench-{uuid.uuid4().hex[:8]}")  # the database may be reused
                _key, secret = store.api_keys.create(user.id, scopes=["workflows:read"])
                headers = Headers({"authorization": f"Bearer {secret}"})
                results = {}
                for label, cold in (("warm", False), ("cold", True)):
                    samples = []
                    for i in range(requests + 200):
                        if cold:
                            ctx.verified_keys.clear()
                        started = time.perf_counter()
                        principal = authenticate(ctx, headers, action="GET /v1/workflows", client="127.0.0.1")
                        authorize(ctx, principal, "workflows:read")
                        if i >= 200:  # the first 200 warm the pool and the page cache
                            samples.append((time.perf_counter() - started) * 1000)
                    results[label] = _percentiles(samples)
        finally:
            store.close()
    return results


def _use_pre_ping(store: Any) -> None:
    """Put SQLAlchemy's pre-ping back on the store's pool and take `engine.store.db`'s checkout check off."""
    from sqlalchemy import event

    from engine.store.db import _check_alive

    engine = store.engine
    if event.contains(engine, "checkout", _check_alive):
        event.remove(engine, "checkout", _check_alive)
    engine.pool._pre_ping = True


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "requests": float(len(samples)),
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[int(0.95 * len(samples)) - 1],
        "p99_ms": samples[int(0.99 * len(samples)) - 1],
        "max_ms": samples[-1],
    }


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", default="", help="default: SQLite under a temporary home")
    parser.add_argument(
        "--pre-ping", action="store_true", help="PostgreSQL: the pool as before, with SQLAlchemy's pre-ping"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.requests, args.database_url, pre_ping=args.pre_ping)
    if args.json:
        print(json.dumps(result))
        return
    backend = args.database_url.split(":", 1)[0] if args.database_url else "sqlite"
    if args.pre_ping:
        backend += ", pre-ping"
    for label, numbers in result.items():
        print(
            f"permission check, key cache {label} ({backend}, {args.requests} requests): "
            f"p50 {numbers['p50_ms']:.3f} ms, p95 {numbers['p95_ms']:.3f} ms, "
            f"p99 {numbers['p99_ms']:.3f} ms, max {numbers['max_ms']:.3f} ms"
        )


if __name__ == "__main__":
    main()
