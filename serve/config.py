"""`ServeOptions`: the knobs of the HTTP API that are not installation settings (those live in `Settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServeOptions:
    """Limits and behaviour of one API server; built by the entry point and passed to `create_app`.

    `rate_per_s`/`burst` size each API key's token bucket; `max_body_bytes` bounds request bodies (413 beyond);
    `executor` chooses where runs execute ("ray" in production, "local" for tests and debugging);
    `event_poll_s` is how often live event streams look for new events in the store; `recovery` runs the
    engine's recovery sweep in this server (safe with several replicas: a stale run is claimed by one only).
    """

    max_body_bytes: int = 1_048_576
    rate_per_s: float = 50.0
    burst: int = 100
    executor: Literal["ray", "local"] = "ray"
    event_poll_s: float = 0.02
    recovery: bool = True
    create_admin_key: bool = True
    print_admin_key: bool = True
