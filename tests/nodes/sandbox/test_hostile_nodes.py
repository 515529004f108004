"""Hostile nodes of an untrusted plugin, run on the session's Ray through `engine.run` and the durable runner:
each is refused or stopped with a clear error, a well-behaved one works, and a trusted plugin's node still
runs unsandboxed (issue 18, "Sandboxed execution with enforced limits")."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from nodes import Catalog
from nodes.plugins import open_plugin_dir
from nodes.plugins.loader import load_plugins
from nodes.sandbox.cgroup import MemoryCgroups

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PLUGIN = Path(__file__).with_name("plugins") / "hostile"
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (.ci/run installs it)"
)
LIMITS = {
    "sandbox_memory_mb": 1024,
    # Enough CPU for the 10 GB allocation to reach the 1 GB memory limit first: filling 1 GB and the kernel's
    # reclaim before its OOM kill took over a second of CPU under load in CI (reported as the CPU limit).
    "sandbox_cpu_s": 3.0,
    # Long enough for a second of CPU on a loaded machine; the wall limit is tested in test_jail.py.
    "sandbox_wall_s": 30.0,
    "sandbox_processes": 32,
    "sandbox_output_mb": 1,
}


@pytest.fixture(scope="module")
def catalog(ray_session: Any) -> Catalog:
    found = Catalog.builtin()
    report = load_plugins([open_plugin_dir(PLUGIN)], found, timeout_s=240)
    assert not report.failed, report.failed
    return found


def _doc(nodes: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "hostile",
        "nodes": {
            name: {"type": f"hostile/{kind}@1", "in": {k: {"value": v} for k, v in values.items()}}
            for name, (kind, values) in nodes.items()
        },
        "outputs": {name: f"{name}.out" for name in nodes},
    }


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(home=tmp_path / "home", **{**LIMITS, **overrides})


def _token_file() -> str:
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")


@needs_bwrap
def test_hostile_nodes_are_refused_or_stopped(catalog: Catalog, tmp_path: Path) -> None:
    import engine

    marker = tmp_path / f"outside-{uuid.uuid4().hex}"
    native_marker = tmp_path / f"native-{uuid.uuid4().hex}"
    doc = _doc(
        {
            "good": ("scale", {"values": [1.0, 2.0], "factor": 3.0}),
            "shadow": ("read_file", {"path": "/etc/shadow"}),
            "token": ("read_file", {"path": _token_file()}),
            "postgres": ("connect", {"port": 5432}),
            "bomb": ("fork_bomb", {"depth": 0}),
            "memory": ("allocate", {"gigabytes": 10}),
            "cpu": ("spin", {"seconds": 30.0}),
            "write": ("write_file", {"path": str(marker)}),
            "native": ("native_system", {"command": f"id > {native_marker}"}),
            "flood": ("flood", {"megabytes": 3}),
        }
    )
    result = engine.run(doc, catalog=catalog, settings=_settings(tmp_path), cache=False, timeout=120)
    nodes = result.nodes
    assert nodes["good"].error is None, nodes["good"].error
    assert result.status.value == "failed"

    def error(name: str) -> tuple[str, str]:
        found = nodes[name].error
        assert found is not None, f"node {name} was not stopped"
        assert "hostile/" in found.message and "untrusted plugin hostile@1.0.0" in found.message, (
            found.message
        )
        return found.type, found.message

    assert error("shadow")[0] == "SandboxedNodeError" and "FileNotFoundError" in error("shadow")[1]
    assert error("token")[0] == "SandboxedNodeError" and "FileNotFoundError" in error("token")[1]
    kind, message = error("postgres")
    assert kind == "SandboxedNodeError" and ("Connection refused" in message or "unreachable" in message)
    assert error("bomb")[0] == "ProcessLimitExceeded" and "32 processes" in error("bomb")[1]
    assert error("memory")[0] == "MemoryLimitExceeded" and "1024 MB" in error("memory")[1]
    if MemoryCgroups.here() is not None:  # the workers share this process's cgroups: they used them too
        assert "memory cgroup" in error("memory")[1], error("memory")[1]
    assert error("cpu")[0] == "CpuTimeLimitExceeded" and "CPU-time limit of 3 s" in error("cpu")[1]
    kind, message = error("write")
    assert kind == "SandboxedNodeError" and ("Read-only" in message or "No such file" in message), message
    assert not marker.exists()
    kind, message = error("native")
    assert kind == "SandboxedNodeError" and "failed with status" in message
    assert not native_marker.exists()
    assert error("flood")[0] == "OutputLimitExceeded" and "1 MB" in error("flood")[1]


@needs_bwrap
def test_a_well_behaved_untrusted_node_returns_its_outputs_and_logs(catalog: Catalog, tmp_path: Path) -> None:
    import engine

    events: list[Any] = []
    doc = _doc(
        {
            "good": ("scale", {"values": [1.0, 2.5], "factor": 2.0}),
            "env": ("environment", {"probe": 1}),
        }
    )
    result = engine.run(
        doc, catalog=catalog, settings=_settings(tmp_path), cache=False, timeout=60, on_event=events.append
    )
    assert result.ok, result.errors
    assert result.outputs["good"] == {"v0": 2.0, "v1": 5.0}
    logs = [e.payload.get("message") for e in events if e.type == "node.log" and e.node == "good"]
    assert "scaling 2 values" in logs
    seen = result.outputs["env"]
    # A clean environment: the allowlist and the plugin's own variables, no Ray, database or token variable.
    assert not [k for k in seen if k.startswith(("RAY_", "AWS", "PG")) or k == "RAYWEAVE_DATABASE_URL"], seen
    assert set(seen) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "PWD",
        "LANG",
        "LC_ALL",
        "TZ",
        "PYTHONDONTWRITEBYTECODE",
        "MALLOC_ARENA_MAX",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "RAYWEAVE_PLUGIN",
        "RAYWEAVE_PLUGIN_CODE",
    }, seen
    token = Path(_token_file())
    if token.is_file():
        secret = token.read_text().strip()
        assert secret and all(secret not in value for value in seen.values())


@needs_bwrap
def test_a_trusted_plugin_runs_unsandboxed(catalog: Catalog, tmp_path: Path) -> None:
    import engine

    doc = _doc({"env": ("environment", {"probe": 2})})
    settings = _settings(tmp_path, trusted_plugins=["hostile"])
    result = engine.run(doc, catalog=catalog, settings=settings, cache=False, timeout=60)
    assert result.ok, result.errors
    # The worker's own environment: Ray's variables are there, as before the sandbox existed.
    assert any(key.startswith("RAY_") for key in result.outputs["env"])


def test_untrusted_nodes_are_refused_where_no_sandbox_runs(catalog: Catalog, tmp_path: Path) -> None:
    import engine

    doc = _doc({"good": ("scale", {"values": [1.0], "factor": 1.0})})
    settings = _settings(tmp_path, sandbox_bwrap=str(tmp_path / "no-such-bwrap"))
    result = engine.run(doc, catalog=catalog, settings=settings, cache=False, timeout=60)
    error = result.nodes["good"].error
    assert error is not None and error.type == "SandboxUnavailableError"
    assert "apt-get install bubblewrap" in error.message and "docs/guides/sandbox.md" in error.message


@needs_bwrap
def test_a_limit_kill_in_a_durable_run_is_audited(catalog: Catalog, tmp_path: Path) -> None:
    from engine.durable import DurableRunner

    settings = _settings(tmp_path)
    runner = DurableRunner(settings, catalog=catalog)
    doc = _doc(
        {"memory": ("allocate", {"gigabytes": 10}), "good": ("scale", {"values": [1.0], "factor": 2.0})}
    )
    result = runner.run(doc, timeout=60)
    assert result.nodes["memory"].error is not None and result.nodes["good"].error is None
    entries = [e for e in runner.store.audit.entries() if e.action == "sandbox.limit_exceeded"]
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry.resource_id == result.run_id and entry.outcome == "denied"
    assert entry.details["limit"] == "MemoryLimitExceeded" and entry.details["node"] == "memory"
    assert runner.store.audit.verify().ok


PROBE_NODES = """
import os

from nodes import node

# Import-time code of the plugin: where does it run? In the jail the working directory is /scratch.
WHERE = "jail" if os.getcwd() == "/scratch" else "worker"


def where(x: int) -> int:
    return x


where.__doc__ = f"imported in the {WHERE}"
where = node(where)
"""


def test_an_admin_untrusted_plugin_s_catalog_is_read_in_the_jail(ray_session: Any, tmp_path: Path) -> None:
    from nodes.sandbox import SandboxPolicy

    root = tmp_path / "probe"
    (root / "probe_nodes").mkdir(parents=True)
    (root / "probe_nodes" / "__init__.py").write_text("")
    (root / "probe_nodes" / "nodes.py").write_text(PROBE_NODES)
    # Its manifest trusts itself; only the admin's setting says otherwise.
    (root / "rayweave-plugin.toml").write_text(
        'name = "probe"\nversion = "1.0.0"\nmodules = ["probe_nodes.nodes"]\n'
    )
    read = {}
    for label, policy in (("admin", SandboxPolicy(untrusted=("probe",))), ("manifest", SandboxPolicy())):
        report = load_plugins([open_plugin_dir(root)], sandbox=policy, timeout_s=240)
        assert not report.failed, report.failed
        [definition] = report.loaded["probe@1.0.0"]
        read[label] = definition.spec.description
    assert read == {"admin": "imported in the jail", "manifest": "imported in the worker"}, read
