"""Per-key token buckets: each API key may make `burst` requests at once and `rate_per_s` on average.

The buckets live in the app's `RateLimiter` object (one per server process), not in a module global. With
several replicas each replica limits on its own, so the effective limit is per replica; that is documented
in the HTTP API guide.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets of keys idle this long are dropped, so the table cannot grow without bound.
IDLE_EVICT_S = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key id. `take(key)` returns 0.0 when the request may proceed, else the seconds to wait."""

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate limit needs rate_per_s > 0 and burst >= 1, got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket; returns 0.0 on success, or how long until a token is available."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate_per_s

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        """`Retry-After` takes whole seconds; round up so a client that obeys it is not refused again."""
        return str(max(1, math.ceil(wait_s)))

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < IDLE_EVICT_S:
            return
        self._last_sweep = now
        for key in [k for k, b in self._buckets.items() if now - b.updated > IDLE_EVICT_S]:
            del self._buckets[key]
