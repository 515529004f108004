"""Ray addresses (`host:port`, optionally `ray://`): split into their parts, and told loopback or not.

Shared by `cluster.ray_runtime` (joining a configured address) and `cluster.ray_record` (joining only a loopback
Ray recorded on this machine).
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback", "split_address"]


def split_address(address: str) -> tuple[str, int] | None:
    """The host and port of a Ray address (`host:port`, `[v6]:port` or `ray://host:port`), or None when it has
    no numeric port."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def is_loopback(address: str) -> bool:
    """Whether the Ray address points at this machine's loopback interface (127.0.0.0/8, ::1 or localhost)."""
    parts = split_address(address)
    if parts is None:
        return False
    try:
        return ipaddress.ip_address(parts[0]).is_loopback
    except ValueError:
        return parts[0] == "localhost"
