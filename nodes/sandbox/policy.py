"""`SandboxPolicy`: which plugins' nodes run in the sandbox, and the limits they run under.

Made from the installation's settings by the process that starts a run (`engine.execution.access.policy_for`)
and carried by the run's `AccessPolicy` to every task, where `nodes.sandbox.jail_for` reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["ALL_PLUGINS", "SandboxLimits", "SandboxPolicy", "Trust"]

Trust = Literal["trusted", "untrusted"]
#: The admin's settings of trust (`cluster.settings.Settings.trusted_plugins`, `untrusted_plugins`).
TRUSTED_VAR, UNTRUSTED_VAR = "RAYWEAVE_TRUSTED_PLUGINS", "RAYWEAVE_UNTRUSTED_PLUGINS"
#: The entry of `trusted` or `untrusted` that names every plugin.
ALL_PLUGINS = "*"
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """What one sandboxed node call may use: memory (a cgroup's or the address space), CPU seconds, wall seconds, processes (threads
    included) and bytes of outputs (scratch files are bounded by the same size)."""

    memory_bytes: int = 2048 * MB
    cpu_s: float = 300.0
    wall_s: float = 600.0
    processes: int = 64
    output_bytes: int = 256 * MB


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """Which plugins are trusted, as the admin overrides their manifests, and the sandbox's limits.

    `trusted` and `untrusted` hold plugin names, or `"*"` for all. A plugin named in `untrusted` is untrusted
    even when also named in `trusted` (the safe side); otherwise a name in `trusted` wins, then `"*"` in
    `untrusted`, then `"*"` in `trusted`, then the plugin's manifest (`trust`, default `trusted`).
    `bwrap` is the bubblewrap executable (a name looked up on PATH, or a path). `memory_cgroup`: limit each
    call's memory with a cgroup of its own where a memory controller is writable (false: always `RLIMIT_AS`).
    """

    trusted: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()
    limits: SandboxLimits = SandboxLimits()
    bwrap: str = "bwrap"
    memory_cgroup: bool = True

    def trust_of(self, plugin: str, manifest_trust: str) -> Trust:
        """The effective trust of plugin `plugin` whose manifest says `manifest_trust`."""
        if plugin in self.untrusted:
            return "untrusted"
        if plugin in self.trusted:
            return "trusted"
        if ALL_PLUGINS in self.untrusted:
            return "untrusted"
        if ALL_PLUGINS in self.trusted:
            return "trusted"
        return "untrusted" if manifest_trust == "untrusted" else "trusted"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SandboxPolicy:
        """The admin's trust settings as this process's environment has them (`RAYWEAVE_TRUSTED_PLUGINS`,
        `RAYWEAVE_UNTRUSTED_PLUGINS`: comma-separated or a JSON array, read as `cluster.settings` reads them),
        default limits. For loading plugins, where no run's policy exists yet (`nodes` may not import
        `cluster`)."""
        env = os.environ if environ is None else environ
        return cls(trusted=_names(env.get(TRUSTED_VAR, "")), untrusted=_names(env.get(UNTRUSTED_VAR, "")))


def _names(text: str) -> tuple[str, ...]:
    text = text.strip()
    if text.startswith("["):
        return tuple(str(name) for name in json.loads(text))
    return tuple(part.strip() for part in text.split(",") if part.strip())
