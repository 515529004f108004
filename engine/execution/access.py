"""The `AccessPolicy` of runs started with an installation's settings (see `nodes.access`).

Every entry point that starts runs (`engine.run`/`submit`, the durable runner behind the CLI, the HTTP API
and recovery) makes the policy here from the `Settings` it was given, and hands it to the executor, which
ships it with each task to the node's context. The policy is made once per run, in the process that starts
it; tasks only carry it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cluster.settings import SYSTEM_FOLDERS, Settings
from nodes.access import AccessPolicy
from nodes.sandbox.policy import SandboxLimits, SandboxPolicy

__all__ = ["policy_for", "protected_paths", "sandbox_policy"]
#: Where Ray keeps its session files (logs, sockets) and a cluster's auth token.
RAY_FOLDERS = ("/tmp/ray", "~/.ray")


def policy_for(settings: Settings) -> AccessPolicy:
    """The policy of runs under `settings`: its data roots (the default one created if missing), the places
    nodes may never reach, and the hosts and networks outbound HTTP may reach although internal."""
    roots = [Path(root).expanduser() for root in settings.resolved_data_roots]
    if not settings.data_roots:
        # The default root is created on demand, so a new installation has a place for its data files.
        with contextlib.suppress(OSError):
            roots[0].mkdir(parents=True, exist_ok=True)
    return AccessPolicy(
        data_roots=tuple(str(root.resolve()) for root in roots),
        protected=protected_paths(settings),
        http_allow=tuple(settings.http_allow),
        sandbox=sandbox_policy(settings),
    )


def sandbox_policy(settings: Settings) -> SandboxPolicy:
    """Which plugins run sandboxed under `settings`, and the sandbox's limits (`nodes.sandbox`)."""
    mb = 1024 * 1024
    limits = SandboxLimits(
        memory_bytes=settings.sandbox_memory_mb * mb,
        cpu_s=settings.sandbox_cpu_s,
        wall_s=settings.sandbox_wall_s,
        processes=settings.sandbox_processes,
        output_bytes=settings.sandbox_output_mb * mb,
    )
    return SandboxPolicy(
        trusted=tuple(settings.trusted_plugins),
        untrusted=tuple(settings.untrusted_plugins),
        limits=limits,
        bwrap=settings.sandbox_bwrap,
        memory_cgroup=settings.sandbox_memory_cgroup,
    )


def protected_paths(settings: Settings) -> tuple[str, ...]:
    """What nodes may never reach: the installation's home (except data roots strictly inside it), its key,
    database, caches, results and plugins wherever they are, Ray's folders, and the system folders."""
    home = Path(settings.home).expanduser()
    places = [
        home,
        Path(settings.admin_key_path),
        home / "plugins",
        Path(settings.resolved_cache_dir),
        *(Path(p) for p in settings.plugin_dirs),
        *(Path(p).expanduser() for p in RAY_FOLDERS),
        *(Path(p) for p in SYSTEM_FOLDERS),
    ]
    database = _sqlite_file(settings.resolved_database_url)
    if database is not None:
        places += [
            database,
            *(database.with_name(database.name + end) for end in ("-wal", "-shm", "-journal")),
        ]
    results = str(getattr(settings, "results_uri", "") or "")
    if not results:
        places.append(home / "results")
    elif results.startswith("file://"):
        places.append(Path(results[len("file://") :]))
    elif "://" not in results:
        places.append(Path(results))
    found: list[str] = []
    for place in places:
        resolved = str(place.expanduser().resolve())
        if resolved not in found:
            found.append(resolved)
    return tuple(found)


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (`sqlite:///relative` or `sqlite:////absolute`, any driver), or
    None for other databases and in-memory ones."""
    scheme, separator, rest = url.partition(":///")
    path = rest.split("?", 1)[0]
    if not scheme.startswith("sqlite") or not separator or not path or path == ":memory:":
        return None
    return Path(path)
