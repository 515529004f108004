"""Verified API keys of one server, remembered for at most `VERIFIED_KEY_TTL_S` (0.5 s).

Reading a key's row and its user costs one to three database round trips per request (about 1.5 ms on
PostgreSQL); remembering a verified key for half a second makes the check of a busy key a dictionary lookup,
while a revocation made on any replica (or with `rayweave keys rotate` on the store) still stops the key on every
replica within 0.5 s — inside issue 18's bound of 1 s. The replica that revokes or rotates a key forgets it at
once (`forget`), and a remembered key past its `expires_at` or its rotation grace (`revoked_at`) is not served
from here: the store then refuses it with the reason. Only successes are remembered, keyed by the SHA-256 of the
secret (never the secret itself); `last_used_at` is written by the store on a miss, throttled as it is there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serve.auth import Principal

#: How long a verified key is trusted without reading the store again (the revocation delay across replicas).
VERIFIED_KEY_TTL_S = 0.5
#: At most this many keys are remembered; past it, the cache starts over (a flood of valid keys only costs reads).
MAX_VERIFIED_KEYS = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    until: float  # time.monotonic() deadline
    expires_at: datetime | None
    revoked_at: datetime | None


class VerifiedKeys:
    """The recently verified keys of one server (thread-safe)."""

    def __init__(self, ttl_s: float = VERIFIED_KEY_TTL_S) -> None:
        if not 0 <= ttl_s <= 1:
            raise ValueError(
                f"ttl_s must be within [0, 1] s (revocations must reach every replica in 1 s), got {ttl_s}"
            )
        self.ttl_s = ttl_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: datetime) -> Principal | None:
        """The principal of a key verified less than `ttl_s` ago and still in force at `now`, else None."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        in_force = (entry.expires_at is None or now < entry.expires_at) and (
            entry.revoked_at is None or now < entry.revoked_at
        )
        if time.monotonic() >= entry.until or not in_force:
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return entry.principal

    def put(
        self, digest: str, principal: Principal, *, expires_at: datetime | None, revoked_at: datetime | None
    ) -> None:
        """Remember a key the store just verified."""
        if self.ttl_s <= 0:
            return
        entry = _Entry(principal, time.monotonic() + self.ttl_s, expires_at, revoked_at)
        with self._lock:
            if len(self._entries) >= MAX_VERIFIED_KEYS:
                self._entries.clear()
            self._entries[digest] = entry

    def forget(self, key_id: str) -> None:
        """Drop a key (revoked or rotated on this server), so this server refuses it from the next request."""
        with self._lock:
            for digest in [d for d, e in self._entries.items() if e.principal.key_id == key_id]:
                del self._entries[digest]

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
