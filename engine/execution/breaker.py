"""Circuit breakers per node type or declared external resource, shared by every run in the cluster.

A node opts in with the tag `external` (the breaker is keyed by its node type) or `external:<resource>` (keyed
by the resource, so several node types calling one service share a breaker). States: closed -> open after
`failure_threshold` failures within `window_s` -> after `open_s`, half-open: one probe call is let through;
its success closes the breaker, its failure opens it again. While open, attempts fail fast with
`CircuitOpenError` without running the node.

`CircuitBreakers` is the plain state machine (used directly by the in-process executor); on Ray one named,
detached actor (`BREAKER_ACTOR_NAME`, see `cluster.actors`) holds it so all runs share it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

BREAKER_ACTOR_NAME = "rayweave-circuit-breakers"


def breaker_key(type_id: str, tags: Iterable[str]) -> str | None:
    """The breaker a node uses: `external:<name>` -> `<name>`, `external` -> its node type, else None."""
    key: str | None = None
    for tag in tags:
        if tag.startswith("external:") and len(tag) > len("external:"):
            return tag[len("external:") :]
        if tag == "external":
            key = type_id
    return key


def counts_against_breaker(exc: BaseException) -> bool:
    """Whether a failed attempt counts against its node's breaker. A refusal by the run's access policy (a
    path outside the data roots, an internal address) never reached the resource and says nothing about its
    health: counting it would let one caller's forbidden requests open the circuit for everyone's."""
    from nodes.builtin.errors import AccessDeniedError

    return not isinstance(exc, AccessDeniedError)


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens (N failures within a window) and how long it stays open before a probe."""

    failure_threshold: int = 5
    window_s: float = 60.0
    open_s: float = 30.0


@dataclass(frozen=True)
class Permit:
    """The answer to "may this attempt run?": `allowed`, else seconds until a probe and recent failures."""

    allowed: bool
    retry_after_s: float = 0.0
    failures: int = 0


@dataclass
class _State:
    failures: deque[float] = field(default_factory=deque)
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    """The breaker state machine for many keys (see the module docstring). Not thread-safe by itself."""

    def __init__(
        self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._states: dict[str, _State] = {}

    def acquire(self, key: str) -> Permit:
        """Ask to run one attempt guarded by breaker `key`."""
        state = self._states.setdefault(key, _State())
        if state.opened_at is None:
            return Permit(True)
        now = self._clock()
        waited = now - state.opened_at
        if waited >= self.policy.open_s and not state.probing:
            state.probing = True  # half-open: exactly one probe at a time
            return Permit(True)
        return Permit(False, max(self.policy.open_s - waited, 0.0), len(state.failures))

    def record(self, key: str, success: bool) -> None:
        """Report the outcome of an attempt that `acquire` allowed."""
        state = self._states.setdefault(key, _State())
        now = self._clock()
        if success:
            if state.opened_at is not None or state.probing:
                self._states[key] = _State()
            return
        state.failures.append(now)
        while state.failures and now - state.failures[0] > self.policy.window_s:
            state.failures.popleft()
        if state.probing or len(state.failures) >= self.policy.failure_threshold:
            state.opened_at = now
            state.probing = False

    def state(self, key: str) -> str:
        """`closed`, `open` or `half_open`."""
        state = self._states.get(key)
        if state is None or state.opened_at is None:
            return "closed"
        if state.probing or self._clock() - state.opened_at >= self.policy.open_s:
            return "half_open"
        return "open"

    def reset(self, key: str | None = None) -> None:
        """Close one breaker (or all)."""
        if key is None:
            self._states.clear()
        else:
            self._states.pop(key, None)


class BreakerClient(Protocol):
    """What the task wrapper needs from a breaker holder (local object or Ray actor)."""

    def acquire(self, key: str) -> Permit:
        """See `CircuitBreakers.acquire`."""

    def record(self, key: str, success: bool) -> None:
        """See `CircuitBreakers.record`."""


class LocalBreakerClient:
    """A `BreakerClient` over an in-process `CircuitBreakers` (in-process executor, tests)."""

    def __init__(self, breakers: CircuitBreakers) -> None:
        self.breakers = breakers

    def acquire(self, key: str) -> Permit:
        """See `CircuitBreakers.acquire`."""
        return self.breakers.acquire(key)

    def record(self, key: str, success: bool) -> None:
        """See `CircuitBreakers.record`."""
        self.breakers.record(key, success)


class RayBreakerClient:
    """A `BreakerClient` over the cluster-wide breaker actor; picklable, so it travels with tasks."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def acquire(self, key: str) -> Permit:
        """Ask the shared actor (a short blocking call: a breaker must answer before the attempt runs)."""
        import ray

        result: Permit = ray.get(self.handle.acquire.remote(key))
        return result

    def record(self, key: str, success: bool) -> None:
        """Report an outcome without waiting for the actor."""
        self.handle.record.remote(key, success)


def breaker_actor(policy: BreakerPolicy | None = None) -> Any:
    """The cluster's shared breaker actor (created on first use; detached so it outlives any one run)."""
    from cluster.actors import named_actor

    return named_actor(_BreakerActor, BREAKER_ACTOR_NAME, args=(policy,), num_cpus=0, max_restarts=-1)


class _BreakerActor:
    """Ray actor body holding the shared `CircuitBreakers` (calls are serialized by the actor)."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.breakers = CircuitBreakers(policy)

    def acquire(self, key: str) -> Permit:
        return self.breakers.acquire(key)

    def record(self, key: str, success: bool) -> None:
        self.breakers.record(key, success)

    def state(self, key: str) -> str:
        return self.breakers.state(key)

    def reset(self, key: str | None = None) -> None:
        self.breakers.reset(key)
