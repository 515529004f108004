"""The record of a local Ray held between commands (`{home}/ray.json`), and reading it back.

`rayweave ray start` (`cluster.local_ray`) writes the record; `ensure_ray` (`cluster.ray_runtime`) reads it with
`recorded_ray` to join that Ray instead of starting one. Both import this module, which imports neither of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cluster.addresses import is_loopback, split_address

__all__ = ["RECORD_NAME", "LocalRay", "process_alive", "record_path", "recorded_ray"]

#: The record of a held local Ray, in the rayweave home.
RECORD_NAME = "ray.json"


@dataclass(frozen=True)
class LocalRay:
    """A running local Ray held by a `rayweave ray start` process: its GCS address and the holder's pid."""

    address: str
    pid: int
    num_cpus: int | None
    started_at: float

    def to_json(self) -> dict[str, Any]:
        """The record as JSON (what `rayweave ray status --json` prints)."""
        return asdict(self)


def record_path(home: Path) -> Path:
    """Where the held local Ray of the rayweave home `home` is recorded."""
    return Path(home) / RECORD_NAME


def recorded_ray(home: Path) -> LocalRay | None:
    """The local Ray recorded in `home` when its holder runs and its address answers, else None.

    A record left by a holder that died is removed; one that is not a loopback address is never used."""
    path = record_path(home)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        held = LocalRay(
            address=str(raw["address"]),
            pid=int(raw["pid"]),
            num_cpus=raw.get("num_cpus"),
            started_at=float(raw.get("started_at", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not process_alive(held.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    parts = split_address(held.address)
    if parts is None or not is_loopback(held.address) or not _answers(parts):
        return None
    return held


def process_alive(pid: int) -> bool:
    """Whether the process `pid` (a holder of a local Ray) still runs; a child of this process that ended is
    reaped."""
    with contextlib.suppress(
        ChildProcessError
    ):  # a holder started by this very process: reap it once it ends
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's: not a holder of ours, but not gone either
        return True
    return True


def _answers(parts: tuple[str, int], timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection(parts, timeout=timeout_s):
            return True
    except OSError:
        return False
