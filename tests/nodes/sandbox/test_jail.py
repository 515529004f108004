"""The jail itself, without Ray: calls of the hostile test plugin's nodes through `nodes.sandbox.jail.run_call`
in this process (the plugin's code on `sys.path`, as its runtime environment puts it in a worker), and the
policy and wire rules the engine relies on."""

from __future__ import annotations

import pickle
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.sandbox import (
    SandboxedNodeError,
    SandboxLimits,
    SandboxPolicy,
    UnsafeOutputError,
    WallTimeLimitExceeded,
)
from nodes.sandbox.wire import dumps_output, loads_output

PLUGIN = Path(__file__).with_name("plugins") / "hostile"
REF = "hostile@1.0.0"
LIMITS = SandboxLimits(memory_bytes=1024 * 2**20, cpu_s=2, wall_s=4, processes=16, output_bytes=2**20)
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def hostile() -> Iterator[Any]:
    import sys

    sys.path.insert(0, str(PLUGIN))
    try:
        import hostile_nodes.nodes as module

        yield module
    finally:
        sys.path.remove(str(PLUGIN))


def _definition(module: Any, name: str) -> Any:
    from nodes.plugins.remote import PluginNodeDefinition

    return PluginNodeDefinition(
        getattr(module, name).spec,
        module="hostile_nodes.nodes",
        attribute=name,
        runtime_env={"env_vars": {"RAYWEAVE_PLUGIN": REF}},
        plugin_ref=REF,
        trust="untrusted",
    )


def _call(module: Any, name: str, **inputs: Any) -> dict[str, Any]:
    from nodes.sandbox.jail import run_call

    return run_call(_definition(module, name), inputs, {}, policy=SandboxPolicy(), limits=LIMITS).outputs


def test_the_admin_overrides_the_manifest_and_untrusted_wins() -> None:
    assert SandboxPolicy().trust_of("acme", "untrusted") == "untrusted"
    assert SandboxPolicy().trust_of("acme", "trusted") == "trusted"
    assert SandboxPolicy(trusted=("acme",)).trust_of("acme", "untrusted") == "trusted"
    assert SandboxPolicy(untrusted=("*",)).trust_of("acme", "trusted") == "untrusted"
    assert SandboxPolicy(untrusted=("*",), trusted=("acme",)).trust_of("acme", "trusted") == "trusted"
    assert SandboxPolicy(untrusted=("acme",), trusted=("acme",)).trust_of("acme", "trusted") == "untrusted"
    assert SandboxPolicy(trusted=("*",)).trust_of("acme", "untrusted") == "trusted"


def test_the_jail_and_its_runner_speak_the_same_protocol() -> None:
    from nodes.sandbox import jail, runner

    for name in ("IO_DIR", "REQUEST", "OUTPUT", "STDERR", "EXIT_MEMORY", "EXIT_OUTPUT"):
        assert getattr(jail, name) == getattr(runner, name), name


def test_outputs_come_back_through_an_allowlist(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow as pa

    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    frame = pd.DataFrame({"a": [1.5, 2.5]})
    value = loads_output(dumps_output({"t": table, "f": frame, "s": {1, 2}, "b": b"\0"}))
    assert value["t"].equals(table) and value["f"].equals(frame) and value["s"] == {1, 2}
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Shell(f"touch {marker}"))
    with pytest.raises(UnsafeOutputError, match=r"posix\.system|os\.system"):
        loads_output(evil)
    assert not marker.exists()


class _Shell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (self.command,))


@needs_bwrap
def test_a_call_leaves_nothing_for_the_next(hostile: Any) -> None:
    _call(hostile, "litter", seconds=30.0)
    seen = _call(hostile, "look_around", probe=1)["out"]
    assert seen["scratch"] == []
    # The jail's init, its call server and this call: the process the first call left running is gone.
    assert len(seen["processes"]) == 3, seen


@needs_bwrap
def test_a_pickled_escape_in_an_output_is_refused(hostile: Any, tmp_path: Path) -> None:
    marker = tmp_path / f"smuggled-{uuid.uuid4().hex}"
    with pytest.raises(UnsafeOutputError, match="may not leave the sandbox"):
        _call(hostile, "smuggle", command=f"touch {marker}")
    assert not marker.exists()


@needs_bwrap
def test_a_jail_stopped_at_its_wall_time_is_replaced(hostile: Any) -> None:
    with pytest.raises(WallTimeLimitExceeded, match="wall-time limit of 4 s"):
        _call(hostile, "nap", seconds=30.0)
    assert _call(hostile, "scale", values=[2.0], factor=2.0)["out"] == {"v0": 4.0}
    with pytest.raises(SandboxedNodeError, match="FileNotFoundError"):
        _call(hostile, "read_file", path="/etc/shadow")


def test_an_untrusted_manifest_with_a_types_hook_is_refused(tmp_path: Path) -> None:
    from nodes.plugins.errors import ManifestError
    from nodes.plugins.manifest import parse_manifest

    data = {"name": "acme", "version": "1.0.0", "modules": ["acme.nodes"], "trust": "untrusted"}
    assert parse_manifest(data, tmp_path / "rayweave-plugin.toml").trust == "untrusted"
    with pytest.raises(ManifestError, match="field 'trust': an untrusted plugin cannot have a 'types' hook"):
        parse_manifest({**data, "types": "acme.types:register"}, tmp_path / "rayweave-plugin.toml")


@needs_bwrap
def test_only_code_folders_of_the_path_are_in_the_jail(
    hostile: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nodes.sandbox.jail import Jail

    # A Ray worker's path starts with the driver's working directory (a home folder, /tmp, a checkout).
    workdir = tmp_path / "driver-cwd"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("database password")
    monkeypatch.syspath_prepend(str(workdir))
    Jail.stop_all()  # the next call starts a jail with this path
    with pytest.raises(SandboxedNodeError, match="FileNotFoundError"):
        _call(hostile, "read_file", path=str(workdir / "notes.txt"))
    assert _call(hostile, "scale", values=[1.0], factor=3.0)["out"] == {"v0": 3.0}


@needs_bwrap
def test_links_planted_in_the_call_folder_are_not_followed(hostile: Any, tmp_path: Path) -> None:
    from nodes.sandbox import SandboxError

    secret = tmp_path / "host-secret.txt"
    secret.write_text("root:$6$host-only-secret")
    for files in (["stderr.txt"], ["output.pkl"]):
        with pytest.raises(SandboxError, match="without a result") as raised:
            _call(hostile, "link_out", target=str(secret), files=files)
        assert "host-only-secret" not in str(raised.value)


def _call_under(module: Any, name: str, policy: SandboxPolicy, limits: SandboxLimits, **inputs: Any) -> Any:
    from nodes.sandbox.jail import run_call

    return run_call(_definition(module, name), inputs, {}, policy=policy, limits=limits).outputs


#: Memory tests touch up to their limit: generous wall time on a loaded machine.
MEMORY_LIMITS = SandboxLimits(memory_bytes=512 * 2**20, cpu_s=20, wall_s=60, processes=16, output_bytes=2**20)


@needs_bwrap
def test_a_call_s_memory_cgroup_stops_it_and_is_removed(hostile: Any) -> None:
    from nodes.sandbox import MemoryLimitExceeded
    from nodes.sandbox.cgroup import MemoryCgroups

    cgroups = MemoryCgroups.here()
    if cgroups is None:
        pytest.skip("no writable cgroup memory controller here (RLIMIT_AS is tested below)")
    policy = SandboxPolicy(memory_cgroup=True)
    with pytest.raises(MemoryLimitExceeded, match=r"512 MB.*memory cgroup"):
        _call_under(hostile, "allocate", policy, MEMORY_LIMITS, gigabytes=10)
    # Resident memory is what counts: address space reserved and never touched is not refused.
    assert _call_under(hostile, "reserve", policy, MEMORY_LIMITS, gigabytes=2)["out"] == 2 * 1024**3
    # The jail's cgroup goes with the jail.
    from nodes.sandbox.jail import Jail

    assert [p.name[:5] for p in cgroups.base.iterdir() if p.is_dir()] == ["jail-"]
    Jail.stop_all()
    for _ in range(200):
        cgroups.sweep()
        if not [p for p in cgroups.base.iterdir() if p.is_dir()]:
            break
        time.sleep(0.01)
    assert not [p.name for p in cgroups.base.iterdir() if p.is_dir()]


@needs_bwrap
def test_without_a_memory_cgroup_the_address_space_is_limited(hostile: Any) -> None:
    from nodes.sandbox import MemoryLimitExceeded

    policy = SandboxPolicy(memory_cgroup=False)  # RAYWEAVE_SANDBOX_MEMORY_CGROUP=false
    with pytest.raises(MemoryLimitExceeded, match=r"512 MB.*MemoryError"):
        _call_under(hostile, "allocate", policy, MEMORY_LIMITS, gigabytes=10)
    with pytest.raises(MemoryLimitExceeded, match=r"512 MB.*MemoryError"):
        _call_under(hostile, "reserve", policy, MEMORY_LIMITS, gigabytes=2)


@needs_bwrap
def test_a_kill_from_outside_is_not_reported_as_a_limit(hostile: Any) -> None:
    from nodes.sandbox import CpuTimeLimitExceeded, SandboxKilledError

    with pytest.raises(SandboxKilledError, match=r"signal 9 \(SIGKILL\) from outside the sandbox"):
        _call(hostile, "die", signum=9)
    # A node ignoring SIGXCPU is killed by the CPU limit's SIGKILL a second later: that one is the CPU limit.
    limits = SandboxLimits(memory_bytes=1024 * 2**20, cpu_s=1, wall_s=60, processes=16, output_bytes=2**20)
    with pytest.raises(CpuTimeLimitExceeded, match="CPU-time limit of 1 s"):
        _call_under(hostile, "spin_stubborn", SandboxPolicy(), limits, seconds=60.0)


@pytest.mark.parametrize("how", ["policy", "environment"])
def test_a_plugin_the_admin_distrusts_is_not_loaded_with_its_types_hook(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    (tmp_path / "rayweave-plugin.toml").write_text(
        'name = "acme"\nversion = "1.0.0"\nmodules = ["acme.nodes"]\ntypes = "acme.types:register"\n'
    )
    package = open_plugin_dir(tmp_path)
    assert package.manifest.trust == "trusted"  # its manifest trusts itself; the admin does not
    if how == "policy":
        report = load_plugins([package], sandbox=SandboxPolicy(untrusted=("acme",)))
    else:
        monkeypatch.setenv("RAYWEAVE_UNTRUSTED_PLUGINS", '["*"]')
        report = load_plugins([package])
    message = str(report.failed["acme@1.0.0"])
    assert not report.loaded
    assert "plugin acme@1.0.0: not loaded" in message and "RAYWEAVE_UNTRUSTED_PLUGINS" in message
    assert "acme.types:register" in message and "RAYWEAVE_TRUSTED_PLUGINS" in message


def test_the_admin_s_trust_settings_are_read_as_the_settings_read_them() -> None:
    from cluster.settings import Settings
    from engine.execution.access import sandbox_policy

    env = {"RAYWEAVE_TRUSTED_PLUGINS": "a, b", "RAYWEAVE_UNTRUSTED_PLUGINS": '["c", "*"]'}
    mine = SandboxPolicy.from_environment(env)
    settings = Settings(trusted_plugins=env["RAYWEAVE_TRUSTED_PLUGINS"], untrusted_plugins=["c", "*"])
    theirs = sandbox_policy(settings)
    assert (mine.trusted, mine.untrusted) == (theirs.trusted, theirs.untrusted) == (("a", "b"), ("c", "*"))
