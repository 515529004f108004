"""Several run coordinators on one cluster: which one a run goes to, and who takes over when one dies.

A cluster may run `count` coordinator actors (`Settings.coordinators`, 1 by default; ADR 023). Each is a named,
detached actor: index 0 is `rayweave-coordinator` (the name of the single coordinator before there were
several), index k > 0 is `rayweave-coordinator-k`. A run goes to the coordinator its id hashes to
(`slot_of`: CRC-32 of the id, modulo `count`: the same in every process and every Python), so runs spread
over the coordinators without any shared table.

When a coordinator dies, `CoordinatorPool` starts its replacement without waiting for it, and until the
replacement answers, runs that hash to it go to the next live coordinator in ring order (a sibling). A durable
run the dead coordinator was driving is resumed by the recovery sweep (`engine.durable.recovery`) through
this same routing, so a sibling (or the replacement, in a process that never saw the old one) takes it over
from its stored results. With one coordinator there is no sibling: a dead one is replaced and waited for, as
before there were several.
"""

from __future__ import annotations

import zlib
from typing import Any

from engine.execution.ray.remote import coordinator_name

__all__ = ["CoordinatorPool", "coordinator_name", "coordinator_names", "slot_of"]


def coordinator_names(count: int) -> list[str]:
    """The actor names of a cluster's `count` coordinators, in ring order."""
    return [coordinator_name(i) for i in range(max(count, 1))]


def slot_of(run_id: str, count: int) -> int:
    """The index of the coordinator that run `run_id` goes to among `count` (stable across processes)."""
    if count <= 1:
        return 0
    return zlib.crc32(run_id.encode("utf-8")) % count


class _Slot:
    """One coordinator as this process sees it: its handle, and whether it has answered a ping."""

    __slots__ = ("handle", "ping", "up")

    def __init__(self) -> None:
        self.handle: Any = None
        self.up = False
        #: The ping sent to a replacement that has not answered yet (checked without waiting).
        self.ping: Any = None


class CoordinatorPool:
    """This process's handles on the cluster's `count` coordinators, and the routing of runs to them.

    `for_run(run_id)` gives the coordinator a run goes to; `lost(index)` is called when a call to it failed
    because its actor died. Not thread-safe: one executor uses it from one thread at a time, as it used its
    single handle before.
    """

    def __init__(self, count: int = 1) -> None:
        if count < 1:
            raise ValueError(f"a cluster needs at least one run coordinator, not {count}")
        self.count = count
        self.slots = [_Slot() for _ in range(count)]

    def start(self, index: int | None = None) -> None:
        """Create (or find by name) coordinator `index`, or every one, without waiting for them to be up."""
        for i in range(self.count) if index is None else (index,):
            slot = self.slots[i]
            if slot.handle is None:
                from engine.execution.ray.coordinator import coordinator_actor

                slot.handle = coordinator_actor(i)
                slot.up = False
                slot.ping = None

    def handle(self, index: int) -> Any:
        """Coordinator `index`, once it answers; one found by name that is dead is replaced once and waited
        for (Ray's own check failure can kill a coordinator before its first ping)."""
        import ray

        self.start(index)
        slot = self.slots[index]
        if not slot.up:
            try:
                ray.get(slot.ping if slot.ping is not None else slot.handle.ping.remote())
            except ray.exceptions.RayActorError:
                self.forget(index)
                self.start(index)
                slot = self.slots[index]
                ray.get(slot.handle.ping.remote())
            slot.up, slot.ping = True, None
        return slot.handle

    def for_run(self, run_id: str) -> tuple[int, Any]:
        """The index and handle of the coordinator run `run_id` goes to: the one it hashes to, or, while that
        one is being replaced, the next live one in ring order; when none is live, the replacement of the one
        it hashes to, waited for."""
        first = slot_of(run_id, self.count)
        for step in range(self.count):
            index = (first + step) % self.count
            if self._ready(index):
                return index, self.handle(index)
        return first, self.handle(first)

    def _ready(self, index: int) -> bool:
        """Whether coordinator `index` can take a run now without waiting for a replacement to start."""
        import ray

        slot = self.slots[index]
        if slot.ping is None:
            return True  # up, or never seen by this process (found or created by name: waited for)
        done, _ = ray.wait([slot.ping], timeout=0)
        if not done:
            return False
        try:
            ray.get(slot.ping)
        except ray.exceptions.RayActorError:  # found the dead one by name again: start another, keep skipping
            self.lost(index)
            return False
        slot.up, slot.ping = True, None
        return True

    def lost(self, index: int) -> None:
        """Coordinator `index` died: start its replacement now, and send runs to its siblings until it is up."""
        self.forget(index)
        if self.count > 1:
            self.start(index)
            slot = self.slots[index]
            slot.ping = slot.handle.ping.remote()

    def forget(self, index: int | None = None) -> None:
        """Drop the handle of coordinator `index` (or of every one): the next use finds or starts it by name."""
        for i in range(self.count) if index is None else (index,):
            self.slots[i] = _Slot()

    def handles(self) -> list[Any]:
        """Every coordinator's handle, once each answers (for measurements and tests)."""
        return [self.handle(i) for i in range(self.count)]
