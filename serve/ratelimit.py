"""Per-key token buckets: each API key may make `burst` requests at once and `rate_per_s` on average.

Two implementations with one interface (`take`, `retry_after_header`, `rate_per_s`, `burst`):

- `RateLimiter` keeps the buckets in memory, in the app's own object (never a module global). Used when Ray
  is not initialized: a single process (uvicorn in tests, embedding), where per process is per installation.
- `SharedRateLimiter` keeps them in one named, detached, async Ray actor (`rayweave-ratelimit`, created on
  first use by `cluster.actors.named_actor`), so every replica of the API (Ray Serve, several
  `rayweave serve` on one cluster) spends from the same bucket: with N replicas a key still gets its limit,
  not N times it. One actor call per request. Buckets are scoped by installation (the database URL), so
  two installations sharing a Ray cluster do not share budgets.

`limiter_for` picks one. If the actor cannot be reached the shared limiter falls back to a local bucket
(per replica) rather than refusing requests: an outage of the limiter must never drop an accepted run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

log = logging.getLogger("rayweave.serve")

#: Buckets of keys idle this long are dropped, so the table cannot grow without bound.
IDLE_EVICT_S = 600.0
#: Name of the detached actor holding the shared buckets (in `cluster.actors.NAMESPACE`).
ACTOR_NAME = "rayweave-ratelimit"
#: How long a request waits for the shared limiter before falling back to the local bucket.
SHARED_TIMEOUT_S = 2.0


class Budget(NamedTuple):
    """One bucket a request spends from: its key, rate and burst, and what it limits (for messages)."""

    key: str
    rate_per_s: float
    burst: int
    what: str = "key"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """The bucket arithmetic, without locking: a table of buckets by key, each with its own rate and burst."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = clock()

    def take(self, key: str, rate_per_s: float, burst: int) -> float:
        """Spend one token of `key`'s bucket; returns 0.0 on success, or how long until a token is available."""
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate_per_s

    def take_all(self, budgets: Sequence[tuple[str, float, int]]) -> tuple[float, int]:
        """Spend one token of every bucket, or none: (0.0, -1) when all have one, else (the longest wait, the
        index of the budget that needs it) with nothing spent, so a refused request costs no other budget."""
        now = self._clock()
        self._sweep(now)
        buckets = []
        for key, rate, burst in budgets:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            buckets.append(bucket)
        waits = [0.0 if b.tokens >= 1.0 else (1.0 - b.tokens) / budgets[i][1] for i, b in enumerate(buckets)]
        worst = max(range(len(waits)), key=waits.__getitem__) if waits else -1
        if worst < 0 or waits[worst] == 0.0:
            for bucket in buckets:
                bucket.tokens -= 1.0
            return 0.0, -1
        return waits[worst], worst

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < IDLE_EVICT_S:
            return
        self._last_sweep = now
        for key in [k for k, b in self._buckets.items() if now - b.updated > IDLE_EVICT_S]:
            del self._buckets[key]


def _check(rate_per_s: float, burst: int) -> None:
    if rate_per_s <= 0 or burst < 1:
        raise ValueError(
            f"rate limit needs rate_per_s > 0 and burst >= 1, got {rate_per_s} and {burst}; "
            "fix ServeOptions.rate_per_s / burst (per key) or auth_failures_per_s / auth_failure_burst "
            "(failed authentications per client address)"
        )


def retry_after(wait_s: float) -> str:
    """`Retry-After` takes whole seconds; round up so a client that obeys it is not refused again."""
    return str(max(1, math.ceil(wait_s)))


class RateLimiter:
    """In-memory token buckets by key id. `take(key)` returns 0.0 when the request may proceed, else the
    seconds to wait."""

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        _check(rate_per_s, burst)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets = TokenBuckets(clock=clock)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket; returns 0.0 on success, or how long until a token is available."""
        with self._lock:
            return self._buckets.take(key, self.rate_per_s, self.burst)

    def take_all(self, budgets: Sequence[Budget]) -> tuple[float, int]:
        """Spend one token of each budget or none (see `TokenBuckets.take_all`)."""
        with self._lock:
            return self._buckets.take_all([(b.key, b.rate_per_s, b.burst) for b in budgets])

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        """`Retry-After` takes whole seconds; round up so a client that obeys it is not refused again."""
        return retry_after(wait_s)


class BucketActor:
    """The body of the shared limiter's Ray actor: token buckets by `scope/key`.

    Async, so calls are served one at a time on the actor's event loop without locks (`take` never awaits).
    """

    def __init__(self) -> None:
        self._buckets = TokenBuckets()

    async def take(self, key: str, rate_per_s: float, burst: int) -> float:
        """Spend one token of `key`; 0.0 on success, else the seconds to wait."""
        return self._buckets.take(key, rate_per_s, burst)

    async def take_all(self, budgets: list[tuple[str, float, int]]) -> tuple[float, int]:
        """Spend one token of each budget or none (see `TokenBuckets.take_all`)."""
        return self._buckets.take_all(budgets)

    async def size(self) -> int:
        """How many buckets are held (for tests and operators)."""
        return len(self._buckets)


def bucket_actor() -> Any:
    """The handle of the shared bucket actor, created on first use (idempotent across replicas)."""
    from cluster.actors import named_actor

    return named_actor(BucketActor, ACTOR_NAME, num_cpus=0, max_restarts=-1)


class SharedRateLimiter(RateLimiter):
    """Token buckets shared by every replica through the `rayweave-ratelimit` Ray actor (see module doc).

    A `RateLimiter` (so it fits wherever one is expected) whose own in-memory buckets are used only while the
    actor is unreachable, so an outage degrades to per-replica limits instead of refusing requests.
    """

    def __init__(self, rate_per_s: float, burst: int, *, scope: str = "") -> None:
        super().__init__(rate_per_s, burst)
        self.scope = scope
        self._actor: Any = None
        self._actor_lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of `key`'s shared bucket; 0.0 on success, else the seconds to wait."""
        import ray

        try:
            actor = self._handle()
            wait: float = ray.get(
                actor.take.remote(f"{self.scope}/{key}", self.rate_per_s, self.burst),
                timeout=SHARED_TIMEOUT_S,
            )
            return wait
        except Exception as exc:  # the limiter must never take the API down
            log.warning(
                "shared rate limiter unavailable (%s); limiting key %s on this replica only", exc, key
            )
            with self._actor_lock:
                self._actor = None  # look the actor up again next time (it may have been restarted)
            return super().take(key)

    def take_all(self, budgets: Sequence[Budget]) -> tuple[float, int]:
        """Spend one token of each shared budget or none, in one actor call (locally while it is unreachable)."""
        import ray

        try:
            actor = self._handle()
            scoped = [(f"{self.scope}/{b.key}", b.rate_per_s, b.burst) for b in budgets]
            wait, index = ray.get(actor.take_all.remote(scoped), timeout=SHARED_TIMEOUT_S)
            return float(wait), int(index)
        except Exception as exc:  # the limiter must never take the API down
            log.warning("shared rate limiter unavailable (%s); limiting on this replica only", exc)
            with self._actor_lock:
                self._actor = None
            return super().take_all(budgets)

    def _handle(self) -> Any:
        with self._actor_lock:
            if self._actor is None:
                self._actor = bucket_actor()
            return self._actor


def limiter_for(rate_per_s: float, burst: int, *, scope: str = "") -> RateLimiter:
    """The shared limiter when Ray is initialized in this process, else the in-memory one."""
    import ray

    if ray.is_initialized():
        return SharedRateLimiter(rate_per_s, burst, scope=scope)
    return RateLimiter(rate_per_s, burst)
