"""Execution policies a node declares: how to retry it (`RetryPolicy`) and what it needs (`Resources`).

Both are frozen values with a stable JSON form, because they appear in the canonical workflow document
(`"retry": {...}`, `"resources": {...}`) and in node specs. The engine alone applies retries; Ray's own
exception retries stay off.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from nodes.errors import PolicyError

__all__ = ["Backoff", "Resources", "RetryPolicy"]

Backoff = Literal["fixed", "exponential"]


def _exception_names(exc_type: type[BaseException]) -> set[str]:
    names: set[str] = set()
    for klass in exc_type.__mro__:
        names.add(klass.__name__)
        names.add(f"{klass.__module__}.{klass.__qualname__}")
    return names


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon the engine retries a node whose attempt raised an exception.

    `max_attempts` counts the first attempt (1 = no retry). `retry_on` lists exception class names
    (`"ConnectionError"` or `"builtins.ConnectionError"`), or classes, that are worth retrying; empty means
    every exception is. Names rather than classes keep the policy JSON-serializable.
    """

    max_attempts: int = 1
    backoff: Backoff = "fixed"
    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: bool = True
    retry_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = tuple(
            (f"{item.__module__}.{item.__qualname__}" if isinstance(item, type) else str(item))
            for item in self.retry_on
        )
        object.__setattr__(self, "retry_on", names)
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise PolicyError(f"RetryPolicy.max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if self.backoff not in ("fixed", "exponential"):
            raise PolicyError(f"RetryPolicy.backoff must be 'fixed' or 'exponential', got {self.backoff!r}")
        if not (self.initial_s >= 0 and math.isfinite(self.initial_s)):
            raise PolicyError(f"RetryPolicy.initial_s must be a finite number >= 0, got {self.initial_s!r}")
        if not (self.max_s >= self.initial_s and math.isfinite(self.max_s)):
            raise PolicyError(f"RetryPolicy.max_s must be finite and >= initial_s, got {self.max_s!r}")

    @classmethod
    def coerce(cls, value: RetryPolicy | int | Mapping[str, Any] | None) -> RetryPolicy:
        """Build a policy from what `@node(retries=...)` accepts.

        None -> no retry; an int n -> n retries after the first attempt (max_attempts = n + 1);
        a mapping -> the JSON form (`from_json`); a policy -> itself.
        """
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool) or not isinstance(value, int | Mapping):
            raise PolicyError(
                f"retries must be None, an int (number of retries), a mapping or a RetryPolicy, got {value!r}"
            )
        if isinstance(value, int):
            if value < 0:
                raise PolicyError(f"retries must be >= 0, got {value}")
            return cls(max_attempts=value + 1)
        return cls.from_json(value)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one.

        Exponential backoff doubles from `initial_s`; both kinds are capped at `max_s`. With `jitter` the
        delay is drawn from [d/2, d] so that many runs failing together do not retry in lockstep.
        """
        if attempt < 1:
            raise PolicyError(f"attempt numbers start at 1, got {attempt}")
        base = self.initial_s
        if self.backoff == "exponential":
            # Cap the exponent: 2**1100 overflows a float long before anyone retries that often.
            base = self.initial_s * 2.0 ** min(attempt - 1, 1000)
        base = min(base, self.max_s)
        if self.jitter and base > 0:
            draw = (rng or random).uniform(0.5, 1.0)
            return base * draw
        return base

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """True when the engine should run another attempt after `exc` ended attempt number `attempt`."""
        if attempt >= self.max_attempts:
            return False
        if not self.retry_on:
            return True
        names = _exception_names(type(exc))
        return any(name in names for name in self.retry_on)

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in workflow documents and node specs."""
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "initial_s": self.initial_s,
            "max_s": self.max_s,
            "jitter": self.jitter,
            "retry_on": list(self.retry_on),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetryPolicy:
        """Read the JSON form; missing keys take their defaults, unknown keys are an error."""
        known = {"max_attempts", "backoff", "initial_s", "max_s", "jitter", "retry_on"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"unknown retry policy keys {unknown}; known keys: {sorted(known)}")
        kwargs = dict(data)
        if "retry_on" in kwargs:
            kwargs["retry_on"] = tuple(kwargs["retry_on"])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Resources:
    """What one attempt of a node needs from the Ray cluster; becomes the Ray task/actor options.

    `memory` is in bytes. `custom` names custom Ray resources (e.g. `{"accelerator_a100": 1}`). None means
    "Ray's default" (1 CPU for a task).
    """

    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze the mapping so that a spec cannot be changed behind the engine's back after planning.
        object.__setattr__(self, "custom", MappingProxyType(dict(self.custom)))
        for name in ("num_cpus", "num_gpus", "memory"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value >= 0):
                raise PolicyError(f"Resources.{name} must be a number >= 0 or None, got {value!r}")
        for key, amount in self.custom.items():
            if not isinstance(key, str) or isinstance(amount, bool) or not amount >= 0:
                raise PolicyError(f"Resources.custom[{key!r}] must be a number >= 0, got {amount!r}")

    def __hash__(self) -> int:
        return hash((self.num_cpus, self.num_gpus, self.memory, tuple(sorted(self.custom.items()))))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # A mappingproxy cannot be pickled; rebuild from a plain dict so specs travel with plain `pickle` too.
        return (Resources, (self.num_cpus, self.num_gpus, self.memory, dict(self.custom)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return (self.num_cpus, self.num_gpus, self.memory, dict(self.custom)) == (
            other.num_cpus,
            other.num_gpus,
            other.memory,
            dict(other.custom),
        )

    def __repr__(self) -> str:
        return (
            f"Resources(num_cpus={self.num_cpus!r}, num_gpus={self.num_gpus!r}, memory={self.memory!r}, "
            f"custom={dict(self.custom)!r})"
        )

    @classmethod
    def coerce(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """Build resources from what `@node(resources=...)` accepts: None, a mapping (JSON form) or itself."""
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        if isinstance(value, Mapping):
            return cls.from_json(value)
        raise PolicyError(f"resources must be None, a mapping or a Resources, got {value!r}")

    def to_ray_options(self) -> dict[str, Any]:
        """Keyword arguments for `ray.remote(...).options(...)`; unset values are left to Ray's defaults."""
        options: dict[str, Any] = {}
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            options["num_gpus"] = self.num_gpus
        if self.memory is not None:
            options["memory"] = self.memory
        if self.custom:
            options["resources"] = dict(self.custom)
        return options

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in workflow documents and node specs (unset values omitted)."""
        data: dict[str, Any] = {}
        for name in ("num_cpus", "num_gpus", "memory"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.custom:
            data["custom"] = dict(sorted(self.custom.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Resources:
        """Read the JSON form; unknown keys are an error."""
        known = {"num_cpus", "num_gpus", "memory", "custom"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"unknown resources keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))

    def merged(self, overrides: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> Resources:
        """A copy with some fields replaced (a workflow may override a node's declared resources)."""
        data = self.to_json()
        data.update(dict(overrides))
        return Resources.from_json(data)
