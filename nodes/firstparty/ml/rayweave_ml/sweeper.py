"""Removing a cancelled training's placement group: `PlacementSweeper`.

A cancelled `ml/train_torch@1` is force-stopped by the engine: its task's process dies at once, Ray stops the
trainer's controller and workers with it, and nothing in the task gets to remove the workers' placement group.
Ray Train's own `PlacementGroupCleaner` notices a dead controller through Ray's State API, which the dashboard
serves; without the dashboard the group stayed reserved (its CPUs unavailable) until the Ray job ended.

So the training reports its placement group (worker rank 0 reads it) to one detached actor holding no CPU
(`SWEEPER_NAME`), with a guard: an actor the training's task created (its metrics queue). Actors a process
creates die with it, so the guard dies when the task is stopped or ends; the sweeper asks the guard every
`CHECK_S` seconds whether it lives and, once it does not, removes the group. A group Ray Train removed already
(the training ended normally) is left alone. Only Ray's core API is used (no State API, no dashboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger("rayweave.ml.sweeper")

__all__ = ["CHECK_S", "SWEEPER_NAME", "PlacementSweeper", "placement_sweeper", "sweep_when_gone"]

#: The detached actor's name (in rayweave's actor namespace).
SWEEPER_NAME = "rayweave-ml-placement-sweeper"
#: How often the sweeper asks a guard whether it lives (seconds).
CHECK_S = 1.0


class PlacementSweeper:
    """The body of the detached sweeper actor (async; see the module docstring)."""

    def __init__(self) -> None:
        self.watched: dict[str, Any] = {}

    async def watch(self, guard: Any, placement_group_hex: str) -> None:
        """Remove placement group `placement_group_hex` once actor `guard` is gone."""
        if placement_group_hex not in self.watched:
            task = asyncio.get_running_loop().create_task(self._follow(guard, placement_group_hex))
            self.watched[placement_group_hex] = task
            task.add_done_callback(lambda _: self.watched.pop(placement_group_hex, None))

    def watching(self) -> list[str]:
        """The placement groups (hex ids) waiting for their guard to go."""
        return sorted(self.watched)

    async def _follow(self, guard: Any, placement_group_hex: str) -> None:
        try:
            await self._wait_gone(guard)
            self._remove(placement_group_hex)
        except Exception:
            log.exception("placement group %s: not removed", placement_group_hex)

    async def _wait_gone(self, guard: Any) -> None:
        import ray

        while True:
            try:
                await asyncio.wait_for(guard.__ray_ready__.remote(), timeout=30)
            except ray.exceptions.RayActorError:  # dead (ActorDiedError), or gone with its owner
                return
            except TimeoutError:  # a busy machine: ask again
                pass
            await asyncio.sleep(CHECK_S)

    @staticmethod
    def _remove(placement_group_hex: str) -> None:
        import ray
        from ray.util.placement_group import PlacementGroup, remove_placement_group

        group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(placement_group_hex)))
        table: Any = ray.util.placement_group_table(group)
        if table.get("state") not in (None, "REMOVED"):
            with contextlib.suppress(Exception):  # removed meanwhile
                remove_placement_group(group)
            log.warning("removed placement group %s: the training that held it is gone", placement_group_hex)


def placement_sweeper() -> Any:
    """The sweeper's handle, started here (in this process's runtime environment, so it can import this module)
    when there is none. Ask for it before the training starts: a new actor's process takes a moment."""
    import ray

    from cluster.actors import named_actor

    env = ray.get_runtime_context().runtime_env
    return named_actor(PlacementSweeper, SWEEPER_NAME, num_cpus=0, runtime_env=dict(env), max_restarts=-1)


def sweep_when_gone(sweeper: Any, guard: Any, placement_group_hex: str, timeout_s: float = 60.0) -> None:
    """Have `sweeper` remove the placement group once `guard` (an actor this process created) is gone; returns
    once the sweeper holds it, so a cancel right after cannot slip between."""
    import ray

    ray.get(sweeper.watch.remote(guard, placement_group_hex), timeout=timeout_s)
