"""The Ray options of a node, made in one place from its policy.

A node's policy — what it needs (`Resources`), how often Ray may run it again after a system fault (a dead
worker or node), the runtime environment of its plugin version, and where it may be scheduled — becomes the
keyword arguments of `ray.remote(...).options(...)` here and nowhere else: the planner puts them in every
planned node (`PlannedNode.ray_options`), the coordinator passes them on (adding only what a call decides, such
as `num_returns`), and `nodes.testing` and the plugin helpers use them for their tasks and actors.

Unset values are left out, so Ray's defaults apply (1 CPU for a task, 3 retries after a system fault). Ray's
retries of *exceptions* are always off: the engine alone retries a node whose code raised (`RetryPolicy`).

Named, detached actors (the run coordinator, the circuit breakers, the rate limiter) are not node policy;
they are made by `cluster.actors.named_actor`, in the one namespace `cluster.actors.NAMESPACE`.

Imports no Ray: nodes stay importable without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.policy import Resources

__all__ = ["PLACEMENT_OPTIONS", "actor_options", "actor_options_of", "task_options"]

#: The options that say where a task or actor runs; a node's actor takes these from its task options.
PLACEMENT_OPTIONS = (
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "runtime_env",
    "scheduling_strategy",
    "label_selector",
)


def _placement(
    resources: Resources | None,
    runtime_env: Mapping[str, Any] | None,
    scheduling_strategy: Any,
    label_selector: Mapping[str, str] | None,
) -> dict[str, Any]:
    options = resources.to_ray_options() if resources is not None else {}
    if runtime_env:
        options["runtime_env"] = dict(runtime_env)
    if scheduling_strategy is not None:
        options["scheduling_strategy"] = scheduling_strategy
    if label_selector:
        options["label_selector"] = dict(label_selector)
    return options


def task_options(
    resources: Resources | None = None,
    *,
    name: str | None = None,
    system_retries: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    scheduling_strategy: Any = None,
    label_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The options of a Ray task running a node with this policy.

    `resources` become `num_cpus`, `num_gpus`, `memory` and `resources`; `name` is the task's readable name
    (`"<workflow>/<node>:<type>"`); `system_retries` is Ray's `max_retries` (how often a task whose worker
    died runs again); `runtime_env` is the plugin version's environment; `scheduling_strategy` (e.g.
    `"SPREAD"` or a `NodeAffinitySchedulingStrategy`) and `label_selector` (node labels the task needs) say
    where it may run. What is None or empty is left to Ray's default; `retry_exceptions` is always False.
    """
    options = _placement(resources, runtime_env, scheduling_strategy, label_selector)
    if name:
        options["name"] = name
    if system_retries is not None:
        options["max_retries"] = _count("system_retries", system_retries, -1)
    options["retry_exceptions"] = False
    return options


def actor_options(
    resources: Resources | None = None,
    *,
    system_restarts: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    scheduling_strategy: Any = None,
    label_selector: Mapping[str, str] | None = None,
    max_concurrency: int | None = None,
) -> dict[str, Any]:
    """The options of a Ray actor hosting a class node with this policy (unnamed: see the module docstring).

    As `task_options`, with `system_restarts` as Ray's `max_restarts` (how often an actor whose process died
    is started again) and `max_concurrency` (how many of its calls run at once). An actor has no task name
    and no retries of exceptions.
    """
    options = _placement(resources, runtime_env, scheduling_strategy, label_selector)
    if system_restarts is not None:
        options["max_restarts"] = _count("system_restarts", system_restarts, -1)
    if max_concurrency is not None:
        options["max_concurrency"] = _count("max_concurrency", max_concurrency, 1)
    return options


def actor_options_of(
    options: Mapping[str, Any], *, system_restarts: int | None = None, max_concurrency: int | None = None
) -> dict[str, Any]:
    """The actor options of a node whose task options (`task_options`) are `options`: the same placement
    (resources, runtime env, scheduling), without what only a task takes (name, retries, returns)."""
    found = {key: options[key] for key in PLACEMENT_OPTIONS if options.get(key) is not None}
    if system_restarts is not None:
        found["max_restarts"] = _count("system_restarts", system_restarts, -1)
    if max_concurrency is not None:
        found["max_concurrency"] = _count("max_concurrency", max_concurrency, 1)
    return found


def _count(what: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be an int >= {least}, got {value!r}")
    return value
