"""The sandbox of untrusted plugins' nodes: a bubblewrap jail inside the Ray worker, with enforced limits.

A plugin is untrusted when its manifest says `trust = "untrusted"` or the admin says so
(`RAYWEAVE_UNTRUSTED_PLUGINS`, overriding the manifest either way with `RAYWEAVE_TRUSTED_PLUGINS`; see
`SandboxPolicy`). Each call of an untrusted plugin's node then runs in a jail of its own
(`nodes.sandbox.jail`): no network, a read-only view of only the code it needs, a size-limited scratch folder,
no Ray token, database URL or other secret, a fresh PID namespace, and limits on memory, CPU time, wall time,
processes and output size. Exceeding one fails the node with `MemoryLimitExceeded`, `CpuTimeLimitExceeded`,
`WallTimeLimitExceeded`, `ProcessLimitExceeded` or `OutputLimitExceeded` (a kill none of the limits explains
is `SandboxKilledError`); where no sandbox can run, the node fails with `SandboxUnavailableError` saying what
to install. docs/guides/sandbox.md has the whole story.

A plugin node definition (`nodes.plugins.remote.PluginNodeDefinition.invoke`) asks `sandboxed(self, policy)`
with the policy of the node's context — the run's, which the engine installs — on every call, so this module
imports nothing heavy. Built-in and local nodes never get here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nodes.sandbox.errors import (
    LIMIT_ERRORS,
    CpuTimeLimitExceeded,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    ProcessLimitExceeded,
    SandboxedNodeError,
    SandboxError,
    SandboxKilledError,
    SandboxLimitExceeded,
    SandboxUnavailableError,
    UnsafeOutputError,
    WallTimeLimitExceeded,
)
from nodes.sandbox.policy import ALL_PLUGINS, SandboxLimits, SandboxPolicy, Trust

if TYPE_CHECKING:
    from nodes.access import AccessPolicy

__all__ = [
    "ALL_PLUGINS",
    "LIMIT_ERRORS",
    "CpuTimeLimitExceeded",
    "MemoryLimitExceeded",
    "OutputLimitExceeded",
    "ProcessLimitExceeded",
    "SandboxError",
    "SandboxKilledError",
    "SandboxLimitExceeded",
    "SandboxLimits",
    "SandboxPolicy",
    "SandboxUnavailableError",
    "SandboxedNodeError",
    "Trust",
    "UnsafeOutputError",
    "WallTimeLimitExceeded",
    "invoke",
    "sandboxed",
]


def sandboxed(definition: Any, policy: AccessPolicy) -> bool:
    """Whether `definition`'s calls must run in the sandbox under the run's `policy` (plugin nodes of
    untrusted plugins only; built-in and local nodes never)."""
    manifest_trust = getattr(definition, "trust", None)
    if manifest_trust is None:
        return False
    return policy.sandbox.trust_of(definition.spec.plugin, manifest_trust) == "untrusted"


def invoke(
    definition: Any, inputs: Mapping[str, Any], params: Mapping[str, Any] | None, policy: AccessPolicy
) -> dict[str, Any]:
    """Run one call of a sandboxed node in a jail of its own and return its outputs (one per output port).

    Runs inside the node's context (`nodes.context.use`): the events the node reports in the jail (log lines,
    progress) are reported again through it. A class node's instance is made (and `setup()` run) in the jail
    for each call: no state of an untrusted node outlives its call. Raises the errors of the module docstring;
    every message names the plugin and the node.
    """
    from nodes import context
    from nodes.sandbox.jail import limited, run_call

    ctx = context.current()
    limits = limited(policy.sandbox.limits, definition.spec.resources.memory)
    run = {"run_id": ctx.run_id, "node_id": ctx.node_id, "attempt": ctx.attempt}
    try:
        result = run_call(
            definition,
            inputs,
            params,
            policy=policy.sandbox,
            limits=limits,
            protected=policy.protected,
            run=run,
        )
    except SandboxError as exc:
        where = f"node {definition.spec.id} of untrusted plugin {definition.plugin_ref}"
        exc.args = (f"{where} (sandboxed): {exc.args[0] if exc.args else exc}",)
        raise
    from nodes.states import EventType

    reported = (EventType.NODE_LOG.value, EventType.NODE_PROGRESS.value)  # never run or node states
    for event_type, payload in result.events:
        if event_type in reported and isinstance(payload, dict):
            ctx.emit(event_type, payload)
    return result.outputs
