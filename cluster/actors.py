"""Named, detached Ray actors of an installation, all in one namespace.

The cluster-wide actors of rayweave — the run coordinator, the circuit breakers, the API's rate limiter —
are found by name from any driver, task or replica. Each is made here (`named_actor`: get it, or create it on
first use, detached so it outlives its creator) and found here (`find_actor`), in the one namespace
`NAMESPACE`, so no caller spells a namespace or a lifetime of its own.

Ray is imported on first use, never at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["NAMESPACE", "find_actor", "named_actor"]

#: The Ray namespace of every named actor of rayweave.
NAMESPACE = "rayweave"


def named_actor(actor_class: Any, name: str, *, args: Sequence[Any] = (), **options: Any) -> Any:
    """The handle of the detached actor `name` in `NAMESPACE`, created from `actor_class` if it does not exist.

    `actor_class` is a plain class or a `ray.remote` one; `args` go to its constructor when the actor is
    created here; `options` are further actor options (e.g. `num_cpus=0`, `max_restarts=-1`,
    `max_concurrency`). Several callers at once get the same actor (`get_if_exists`).
    """
    import ray
    from ray.actor import ActorClass

    remote_class = actor_class if isinstance(actor_class, ActorClass) else ray.remote(actor_class)
    return remote_class.options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, **options
    ).remote(*args)


def find_actor(name: str) -> Any | None:
    """The handle of the named actor `name` in `NAMESPACE`, or None when there is none (not made yet, or dead
    for good)."""
    import ray

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
