"""Handing compiled plans to the run coordinator once per plan, not once per run.

A plan is pickled with cloudpickle on its way to the coordinator and rebuilt there: for a thousand-node plan
that is about 15 ms before the first node can be submitted, paid again by every run of the same compiled
plan (issue 4, W1; a served workflow compiled once runs many times). The caller's `PlanShipper` puts each
plan into the object store once, while the plan object lives, and sends only its `ShippedPlan` (a ref that Ray
passes through unresolved); the coordinator's `PlanCache` keeps the plans it rebuilt by that ref, so a rerun
costs a dictionary lookup on both sides.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from engine.compile.plan import Plan


class ShippedPlan:
    """A plan in Ray's object store, as the coordinator receives it (Ray does not resolve a ref inside)."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref


class PlanShipper:
    """The caller's side: one object-store copy per live plan object (Ray must be initialized)."""

    def __init__(self) -> None:
        self._shipped: dict[int, tuple[weakref.ref[Plan], str, ShippedPlan]] = {}

    def ship(self, plan: Plan) -> ShippedPlan:
        """`plan` in the object store (put there on its first run in this Ray job; dropped when the plan
        object is)."""
        import ray

        key = id(plan)
        job = ray.get_runtime_context().get_job_id()
        found = self._shipped.get(key)
        if found is None or found[0]() is not plan or found[1] != job:
            shipped = ShippedPlan(ray.put(plan))
            found = (weakref.ref(plan, lambda _: self._shipped.pop(key, None)), job, shipped)
            self._shipped[key] = found
        return found[2]


class PlanCache:
    """The coordinator's side: the plans it rebuilt, by object-store id (least recently used dropped)."""

    LIMIT = 32

    def __init__(self) -> None:
        self._plans: OrderedDict[bytes, Plan] = OrderedDict()

    async def get(self, plan: Plan | ShippedPlan) -> Plan:
        """The plan itself (fetched from the object store unless this coordinator has it already)."""
        if not isinstance(plan, ShippedPlan):
            return plan
        key = plan.ref.binary()
        found = self._plans.get(key)
        if found is None:
            found = await plan.ref
            self._plans[key] = found
            if len(self._plans) > self.LIMIT:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return found
