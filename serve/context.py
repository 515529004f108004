"""`ServerContext`: everything one API server process holds, built by the app's lifespan and kept in app state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serve.key_cache import VerifiedKeys

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.store import Store
    from nodes import Catalog
    from serve.auth_failures import FailedAuthGuard
    from serve.config import ServeOptions
    from serve.metrics import ApiMetrics
    from serve.ratelimit import RateLimiter
    from serve.runs import RunLauncher


@dataclass
class ServerContext:
    """The settings, store, catalog, type registry, rate limiter, run launcher, metrics, failed-authentication
    guard, live plugins and recently verified keys of one server. `catalog` always answers with the plugins installed right now;
    `plugins` (a `nodes.plugins.live.LivePlugins`, None when the plugin installer is missing) installs and
    removes them."""

    settings: Settings
    options: ServeOptions
    store: Store
    catalog: Catalog
    registry: Any
    limiter: RateLimiter
    launcher: RunLauncher
    metrics: ApiMetrics
    auth_failures: FailedAuthGuard
    plugins: Any = None
    #: Keys verified in the last 0.5 s (`serve.key_cache`): revocations reach this server within that time.
    verified_keys: VerifiedKeys = field(default_factory=VerifiedKeys)
