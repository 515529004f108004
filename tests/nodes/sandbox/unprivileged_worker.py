"""Run by test_unprivileged.py as a worker without root: calls of the hostile plugin's nodes through the jail's
non-root path (`--unshare-user`), printed as one JSON object `{node: [outcome, value or message]}`.

Arguments: the rayweave checkout and the hostile plugin's folder (both put on `sys.path`, as a worker's
runtime environment would).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> None:
    """Call each node once (memory limited by `RLIMIT_AS`, as where no cgroup is delegated) and print."""
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import hostile_nodes.nodes as module

    from nodes.plugins.remote import PluginNodeDefinition
    from nodes.sandbox import SandboxLimits, SandboxPolicy
    from nodes.sandbox.jail import jail_command, run_call

    limits = SandboxLimits(memory_bytes=1024 * 2**20, cpu_s=1, wall_s=60, processes=16, output_bytes=2**20)
    policy = SandboxPolicy(memory_cgroup=False)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("scale", {"values": [1.0, 2.0], "factor": 3.0}),
        ("read_file", {"path": "/etc/shadow"}),
        ("write_file", {"path": os.path.join(sys.argv[3], "outside")}),
        ("allocate", {"gigabytes": 10}),
        ("spin", {"seconds": 30.0}),
        ("litter", {"seconds": 30.0}),
        ("look_around", {"probe": 1}),
    ]
    found: dict[str, Any] = {
        "euid": os.geteuid(),
        "command": jail_command("bwrap", "/tmp", 2**20, (), {}, {}),
    }
    for name, inputs in calls:
        definition = PluginNodeDefinition(
            getattr(module, name).spec,
            module="hostile_nodes.nodes",
            attribute=name,
            runtime_env={"env_vars": {"RAYWEAVE_PLUGIN": "hostile@1.0.0"}},
            plugin_ref="hostile@1.0.0",
            trust="untrusted",
        )
        try:
            found[name] = [
                "ok",
                run_call(definition, inputs, {}, policy=policy, limits=limits).outputs["out"],
            ]
        except Exception as exc:
            found[name] = [type(exc).__name__, str(exc)]
    print(json.dumps(found, default=str))


if __name__ == "__main__":
    main()
