"""`ServeOptions`: the knobs of the HTTP API that are not installation settings (those live in `Settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from serve.oidc import OidcConfig
from serve.sessions import BrowserLogin


@dataclass(frozen=True)
class ServeOptions:
    """Limits and behaviour of one API server; built by the entry point and passed to `create_app`.

    `rate_per_s`/`burst` size each API key's token bucket; `max_body_bytes` bounds request bodies (413 beyond);
    `executor` chooses where runs execute ("ray" in production, "local" for tests and debugging);
    `event_poll_s` is how often live event streams look for new events in the store; `recovery` runs the
    engine's recovery sweep in this server (safe with several replicas: a stale run is claimed by one only), at
    start-up and then every `recovery_interval_s`. A running run counts as lost after `recovery_stale_after_s`
    without a heartbeat (its coordinator beats every 2 s) and a queued one (recorded or claimed, its coordinator
    still starting) after `recovery_start_grace_s` (never less than the former) — both generous, because under
    a loaded SQLite a coordinator can miss beats or take seconds to start, and resuming a run that is still
    alive would execute it twice. A run is resumed at most about `stale + interval` after its coordinator died.
    `oidc`, when set, makes Bearer tokens shaped like JWTs verify as OIDC tokens of that issuer (see
    `serve.oidc.OidcConfig`); without it such tokens are refused like unknown API keys.
    `auth_failures_per_s`/`auth_failure_burst` size each client address's bucket of failed authentications
    (429 beyond; valid credentials are never refused by it) and `auth_audit_window_s` is the window in which an
    address's failures are audited as one summary row (see `serve.auth_failures`).
    `max_output_bytes` bounds the JSON of the outputs one `GET /v1/runs/{id}/outputs` sends (all together; an
    output beyond it is named in `omitted_outputs` instead, see `engine.durable.outputs`). `max_active_runs`
    is each user's quota of queued and running runs (429 beyond it, nothing recorded; None: no quota).
    `user_rate_per_s`/`user_burst` and `address_rate_per_s`/`address_burst` add a budget per user (all their
    keys together) and per client address (IPv6 by /64) to the per-key one (None: not limited).
    """

    max_body_bytes: int = 1_048_576
    rate_per_s: float = 50.0
    burst: int = 100
    executor: Literal["ray", "local"] = "ray"
    event_poll_s: float = 0.02
    recovery: bool = True
    recovery_stale_after_s: float = 60.0
    recovery_start_grace_s: float = 60.0
    recovery_interval_s: float = 5.0
    create_admin_key: bool = True
    print_admin_key: bool = True
    oidc: OidcConfig | None = None
    auth_failures_per_s: float = 1.0
    auth_failure_burst: int = 20
    auth_audit_window_s: float = 60.0
    max_output_bytes: int = 32 * 1024 * 1024
    #: Browser sign-in with the OIDC provider of `oidc` (`serve.browser_login`); None: API keys and tokens only.
    browser_login: BrowserLogin | None = None
    #: Each user's request budget across all their keys, and each client address's (None: not limited).
    user_rate_per_s: float | None = None
    user_burst: int = 200
    address_rate_per_s: float | None = None
    address_burst: int = 400
    #: Each user's quota of queued and running runs (`rayweave serve --max-active-runs`); None: no quota.
    max_active_runs: int | None = None
