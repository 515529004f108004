"""Sandbox benchmark: the call of a tiny plugin node in the sandbox (nodes.sandbox) against the same call
unsandboxed, inside one Ray worker of the plugin's runtime environment.

Run: `python -m bench.sandbox_bench` (about half a minute on a 2-core machine; needs bubblewrap). Target
(issue 18): sandboxed node call overhead < 50 ms p50.

One Ray task in the plugin's environment calls the node's definition `CALLS` times under a run policy that
trusts the plugin (the node runs in the worker, as before the sandbox) and `CALLS` times under one that does
not (each call runs in a jail of its own: `nodes.sandbox.jail`; memory limited by a cgroup of the call where
one is writable), and `CALLS` times sandboxed with `RLIMIT_AS` instead of the cgroup, after `WARMUP` calls of
each; the three are interleaved call by call. Printed: p50, p95 and mean of each, the overhead (sandboxed p50 - unsandboxed p50), the ratio, and the
load average.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

CALLS = 40
WARMUP = 3
NODE = '''
from nodes import node

@node
def inc(x: int) -> int:
    """Adds one."""
    return x + 1
'''
MANIFEST = 'name = "sbxbench"\nversion = "1.0.0"\nmodules = ["sbxbench_nodes.nodes"]\ntrust = "untrusted"\n'


def _calls(definition: Any, policy: Any, count: int) -> list[float]:
    """Seconds of each of `count` calls of `definition` under a node context with `policy` (in the worker)."""
    from nodes import context

    seconds: list[float] = []
    with context.use(context.NodeContext("bench-run", "inc", 1, None, policy)):
        for index in range(count):
            start = time.perf_counter()
            out = definition.invoke({"x": index}, {})
            seconds.append(time.perf_counter() - start)
            assert out == {"out": index + 1}, out
    return seconds


def _measure(definition: Any, trusted: Any, untrusted: Any, rlimit: Any) -> dict[str, Any]:
    from nodes.sandbox.cgroup import MemoryCgroups

    _calls(definition, trusted, WARMUP)
    _calls(definition, untrusted, WARMUP)
    _calls(definition, rlimit, WARMUP)
    found: dict[str, Any] = {"unsandboxed": [], "sandboxed": [], "rlimit_as": []}
    # Interleaved, so that a change of the machine's load weighs on all three alike.
    for _ in range(CALLS):
        found["unsandboxed"] += _calls(definition, trusted, 1)
        found["sandboxed"] += _calls(definition, untrusted, 1)
        found["rlimit_as"] += _calls(definition, rlimit, 1)
    return {**found, "cgroup": MemoryCgroups.here() is not None}


def _row(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:12} p50 {statistics.median(ordered) * 1e3:8.2f} ms   p95 {p95 * 1e3:8.2f} ms   "
        f"mean {statistics.fmean(ordered) * 1e3:8.2f} ms"
    )


def main() -> None:
    """Measure and print both, the overhead and the ratio."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from nodes.access import AccessPolicy
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins
    from nodes.sandbox import SandboxPolicy

    with tempfile.TemporaryDirectory(prefix="rayweave-sandbox-bench-") as tmp:
        root = Path(tmp) / "sbxbench"
        (root / "sbxbench_nodes").mkdir(parents=True)
        (root / "sbxbench_nodes" / "__init__.py").write_text("")
        (root / "sbxbench_nodes" / "nodes.py").write_text(NODE)
        (root / "rayweave-plugin.toml").write_text(MANIFEST)
        ensure_ray(Settings(home=Path(tmp) / "home"), num_cpus=2, include_dashboard=False)
        try:
            package = open_plugin_dir(root)
            report = load_plugins([package])
            assert not report.failed, report.failed
            [definition] = report.loaded[package.ref]
            trusted = AccessPolicy(sandbox=SandboxPolicy(trusted=("sbxbench",)))
            untrusted = AccessPolicy(sandbox=SandboxPolicy(untrusted=("sbxbench",)))
            rlimit = AccessPolicy(sandbox=SandboxPolicy(untrusted=("sbxbench",), memory_cgroup=False))
            task: Any = ray.remote(_measure).options(**definition.ray_options())
            found = ray.get(task.remote(definition, trusted, untrusted, rlimit))
        finally:
            shutdown_ray()
    plain, jailed = found["unsandboxed"], found["sandboxed"]
    print(f"{CALLS} calls each of a plugin node (x + 1) in one worker of its runtime environment")
    print(_row("unsandboxed", plain))
    memory = "its jail's memory cgroup" if found["cgroup"] else "RLIMIT_AS (no writable memory cgroup here)"
    print(_row("sandboxed", jailed) + f"   (memory limited by {memory})")
    print(_row("RLIMIT_AS", found["rlimit_as"]) + "   (RAYWEAVE_SANDBOX_MEMORY_CGROUP=false)")
    overhead = statistics.median(jailed) - statistics.median(plain)
    ratio = statistics.median(jailed) / statistics.median(plain)
    verdict = "met" if overhead < 0.05 else "MISSED"
    print(f"\nsandbox overhead p50: {overhead * 1e3:.2f} ms (target < 50 ms: {verdict}); ratio {ratio:.0f}x")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
