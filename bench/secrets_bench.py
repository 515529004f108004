"""Benchmark of secret resolution: what a node that takes `{"secret": "name"}` pays, against one that does not.

Three figures, each a median over repeats, printed in milliseconds:

- `open_cold`: opening one sealed secret in a fresh process state (the master key file read, the data key
  unwrapped, the value decrypted) — what the first node of a worker that uses a secret pays;
- `open_warm`: the same secret again in that process (remembered per owner, name and ciphertext);
- per node on Ray: a durable run of N independent nodes each given the secret, against the same run with the
  value written as a plain param (`--nodes`, default 16), and the difference per node.

    .venv/bin/python -m bench.secrets_bench [--nodes 16] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes import node


def _open_times(home: Path, repeats: int) -> dict[str, float]:
    from cluster.settings import Settings
    from engine.secrets import SecretsService, key_provider, refs
    from engine.secrets.refs import KeySource, RunSecrets
    from engine.secrets.service import sealed_of
    from engine.store import open_store

    settings = Settings(home=home)
    with open_store(settings.resolved_database_url) as store:
        SecretsService(store, key_provider(settings, create=True)).set("bench", "token", "t" * 40)
        sealed = {"token": sealed_of(store.secrets.get("bench", "token"))}
    secrets = RunSecrets("bench", sealed, KeySource.of(settings))
    cold, warm = [], []
    for _ in range(repeats * 20):
        refs._OPENED.clear()
        started = time.perf_counter()
        secrets.resolve({"token": {"secret": "token"}})
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        secrets.resolve({"token": {"secret": "token"}})
        warm.append((time.perf_counter() - started) * 1000)
    return {"open_cold_ms": statistics.median(cold), "open_warm_ms": statistics.median(warm)}


@node(plugin="bench", cache=False)
def use_token(text: str, *, token: str) -> str:
    """What a client does with a token: a digest of it stands for a signed request."""
    return f"{text}:{hashlib.sha256(token.encode()).hexdigest()[:8]}"


def _run_times(home: Path, nodes: int, repeats: int) -> dict[str, float]:
    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.durable import DurableRunner
    from engine.secrets import SecretsService, key_provider
    from engine.store import open_store
    from engine.workflow import Workflow

    settings = Settings(home=home)
    ensure_ray(settings, num_cpus=2)
    with open_store(settings.resolved_database_url) as store:
        SecretsService(store, key_provider(settings, create=True)).set("bench", "token", "t" * 40)
        runner = DurableRunner(settings, store=store, cache=False)

        def workflow(token: Any) -> Workflow:
            wf = Workflow("secret-bench")
            for i in range(nodes):
                wf.output(f"o{i}", wf.add(f"n{i}", use_token, text=str(i), params={"token": token}))
            return wf

        plain, referenced = workflow("t" * 40), workflow({"secret": "token"})
        runner.run(plain, owner="bench", timeout=300)  # warm the workers
        runner.run(referenced, owner="bench", timeout=300)
        times: dict[str, list[float]] = {"plain": [], "secret": []}
        for _ in range(repeats):
            for label, wf in (("plain", plain), ("secret", referenced)):
                started = time.perf_counter()
                result = runner.run(wf, owner="bench", timeout=300)
                times[label].append(time.perf_counter() - started)
                assert result.ok, result.errors
    plain_s, secret_s = statistics.median(times["plain"]), statistics.median(times["secret"])
    return {
        "run_plain_s": plain_s,
        "run_secret_s": secret_s,
        "per_node_overhead_ms": (secret_s - plain_s) / nodes * 1000,
    }


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = _open_times(Path(scratch) / "a", args.repeats)
        figures.update(_run_times(Path(scratch) / "b", args.nodes, args.repeats))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>22}: {value:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
