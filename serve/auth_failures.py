"""Failed authentication per client address: a limit, and an audit that stays small under a flood.

A client that keeps presenting bad credentials (missing, malformed, unknown, expired or revoked keys, refused OIDC
tokens) spends tokens of a bucket kept for its address (`ServeOptions.auth_failures_per_s`, `auth_failure_burst`);
once the bucket is empty its failures are answered `429` with `Retry-After` instead of `401`. Only failures
count: valid credentials are verified and served whatever their address's bucket holds, so an attacker behind
the same NAT or proxy as real users cannot lock them out (API keys are 256-bit secrets and tokens are signed, so
the limit is not what stops guessing; it bounds the work and the records a flood causes). The buckets are those
of `serve.ratelimit` (shared by every replica through its Ray actor when Ray is up), kept apart from the per-key
ones by their scope.

The audit of failures is aggregated per address and window (`ServeOptions.auth_audit_window_s`): the first
failure of an address in a window is written at once, with its reason and request id; the others are counted and
written as one summary row (count, how many were refused with 429, reasons, last request id) when the window
ends, at the latest with the next request the replica authenticates or when the server stops. So an address
adds at most two rows per window and replica, however many requests it sends.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from serve.ratelimit import RateLimiter

log = logging.getLogger("rayweave.serve")

#: The audit action of failed authentications (single and summary rows alike).
ACTION = "auth.failed"
#: Most distinct reasons counted per window (further ones count under "other").
MAX_REASONS = 8
#: Most addresses with an open window; beyond it every open window is written out at once.
MAX_OPEN_WINDOWS = 10_000


def client_key(host: str | None) -> str:
    """The address a failure is counted against: IPv4 as is, IPv6 by its /64 network (one host usually holds
    a whole /64, so counting single IPv6 addresses would be no limit at all), anything else verbatim."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Window:
    """The failures of one address since its window opened, beyond the first (which was written at once)."""

    opened: float
    opened_at: datetime
    count: int = 0
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_request_id: str = ""
    last_action: str = ""


class FailedAuthGuard:
    """Counts, limits and audits failed authentications of one server (see the module docstring)."""

    def __init__(
        self,
        audit: Any,
        limiter: RateLimiter,
        *,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"auth_audit_window_s must be > 0, got {window_s}; fix ServeOptions")
        self.audit = audit
        self.limiter = limiter
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._next_due = clock() + window_s

    def failed(self, host: str | None, *, reason: str, action: str, request_id: str) -> float:
        """Record one failed authentication from `host`; 0.0 when it may be answered 401, else the seconds
        until the address may fail again (answer 429 with `Retry-After`)."""
        key = client_key(host)
        wait = self.limiter.take(key)
        now = self._clock()
        rows: list[dict[str, Any]] = []
        with self._lock:
            rows.extend(self._close_due(now, force=len(self._windows) >= MAX_OPEN_WINDOWS))
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(opened=now, opened_at=datetime.now(UTC))
                rows.append(
                    _row(action, {"client": key, "count": 1, "reason": reason, "request_id": request_id})
                )
            else:
                window.count += 1
                window.refused += wait > 0
                if reason in window.reasons or len(window.reasons) < MAX_REASONS:
                    window.reasons[reason] += 1
                else:
                    window.reasons["other"] += 1
                window.last_request_id = request_id
                window.last_action = action
        self._write(rows)
        return wait

    def tick(self) -> None:
        """Write the summaries of windows that have ended; cheap when none has (called on every request)."""
        now = self._clock()
        if now < self._next_due:
            return
        with self._lock:
            rows = self._close_due(now)
        self._write(rows)

    def flush(self) -> None:
        """Write every open window's summary now (the server is stopping)."""
        with self._lock:
            rows = self._close_due(self._clock(), force=True)
        self._write(rows)

    def _close_due(self, now: float, *, force: bool = False) -> list[dict[str, Any]]:
        """Close the windows that ended (all with `force`) and return their summary rows; holds the lock."""
        if not force and now < self._next_due:
            return []
        rows = []
        for key, window in list(self._windows.items()):
            if force or now - window.opened >= self.window_s:
                del self._windows[key]
                if window.count:
                    rows.append(_summary(key, window, now))
        opened = [w.opened for w in self._windows.values()]
        self._next_due = (min(opened) if opened else now) + self.window_s
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                self.audit.append("anonymous", ACTION, outcome="denied", resource_type="request", **row)
            except Exception:  # the audit must never turn a refusal into a server error
                log.exception("could not write the audit entry of failed authentication from %s", row)


def _row(action: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"resource_id": action, "details": details}


def _summary(key: str, window: _Window, now: float) -> dict[str, Any]:
    return _row(
        window.last_action,
        {
            "client": key,
            "count": window.count,
            "refused": window.refused,
            "reasons": dict(window.reasons.most_common()),
            "since": window.opened_at.isoformat(),
            "seconds": round(now - window.opened, 1),
            "request_id": window.last_request_id,
            "summary": True,
        },
    )
