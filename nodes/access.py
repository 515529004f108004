"""`AccessPolicy`: what the built-in file and network nodes of a run may reach.

A run's policy is made from the installation's settings by the process that starts the run (the engine's
`engine.execution.access.policy_for`) and travels with every task to the node's context
(`nodes.context.current().policy`), where `nodes.builtin.paths` and `nodes.builtin.netguard` apply it:

- file nodes read and write only below ``data_roots``, never inside ``protected`` locations (the
  installation's home, keys, database, caches and results; ``/proc``, ``/sys``, ``/dev``), except below a
  data root that lies strictly inside such a location (the default root, ``{home}/data``, is inside the home);
- ``http_request`` refuses internal addresses (loopback, private, link-local, unique-local, multicast,
  unspecified, reserved and cloud metadata addresses) unless ``http_allow`` lists the host, the address or a
  network holding it.

A node called directly, outside any run (``nodes.testing.run_node``, a unit test, a script), gets
`AccessPolicy.UNRESTRICTED`: the caller's own process and permissions are the only limit there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nodes.sandbox.policy import SandboxPolicy

__all__ = ["ALLOW_ALL", "AccessPolicy"]

#: The `http_allow` entry that lets a node reach every address (no protection at all).
ALLOW_ALL = "*"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The locations and addresses built-in nodes may reach in one run (see the module docstring).

    `data_roots` and `protected` are absolute paths (resolved again where the node runs, so a root that is
    a symlink works); `http_allow` holds host names, IP addresses and CIDR networks, or `"*"` for all. The
    default policy allows no file and no internal address: an engine entry point that forgot to pass the
    installation's policy fails closed.
    """

    data_roots: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    http_allow: tuple[str, ...] = ()
    #: Which plugins' nodes run in the sandbox, and its limits (`nodes.sandbox`, issue 18).
    sandbox: SandboxPolicy = SandboxPolicy()  # noqa: RUF009 (a frozen value, shared safely)

    #: No limit at all: what a node called outside a run gets (filled in below the class).
    UNRESTRICTED: ClassVar[AccessPolicy]

    @property
    def any_address(self) -> bool:
        """True when outbound HTTP may reach every address (`"*"` in `http_allow`)."""
        return ALLOW_ALL in self.http_allow

    def describe_roots(self) -> str:
        """The data roots for messages: ``/a, /b``, or a note that there are none."""
        return ", ".join(self.data_roots) if self.data_roots else "none configured"


AccessPolicy.UNRESTRICTED = AccessPolicy(data_roots=("/",), http_allow=(ALLOW_ALL,))
