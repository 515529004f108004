"""Which runs an audience may see on Redis (`engine.store.shares.visible_runs`: its own runs, the runs of the
workflows it may see, deleted ones included, and for a whole tenant every run started in it), checked run by run
for the run listing and the webhook worker. What it reads once (the workflows shared with the audience, the
tenant's users) is read at the first run checked; the owner of each workflow met is looked up once.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from engine.store.redis.base import RedisRepository
from engine.store.redis.shares import shared_workflow_ids, tenant_user_ids, visible_workflow_ids
from engine.store.shares import Audience


class RunVisibility:
    """The runs `audience` may see, among those a repository of the same Redis store reads."""

    def __init__(self, repository: RedisRepository, audience: Audience) -> None:
        self.client, self.keys, self.audience = repository.client, repository.keys, audience
        self._owners: set[str] | None = None
        self._shared: set[str] = set()
        self.workflow_owners: dict[str, str | None] = {}

    def _load(self) -> set[str]:
        """The users whose runs and workflows are the audience's (itself, and its tenant's for a whole tenant)."""
        if self._owners is None:
            audience = self.audience
            tenant = (
                tenant_user_ids(self.client, self.keys, audience.tenant_id)
                if audience.whole_tenant
                else set()
            )
            self._owners = {audience.user_id, *tenant}
            self._shared = shared_workflow_ids(self.client, self.keys, audience)
        return self._owners

    def narrower(self, index: str) -> builtins.list[str] | None:
        """The run indexes whose union is every run the audience may see (its owners' runs, and the runs of the
        workflows it may see), if they hold fewer runs than `index`; else None."""
        k = self.keys
        workflows = visible_workflow_ids(self.client, k, self.audience, deleted=True)
        indexes = [k("runs", "owner", owner) for owner in sorted(self._load())]
        indexes += [k("runs", "wf", wf) for wf in sorted(workflows)]
        pipe = self.client.pipeline(transaction=False)
        for key in [index, *indexes]:
            pipe.zcard(key)
        total, *sizes = pipe.execute()
        return indexes if sum(sizes) < total else None

    def visible(self, ids: builtins.list[str]) -> builtins.list[str]:
        """The runs of `ids` the audience may see, in their order."""
        if not ids:
            return ids
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.hmget(self.keys("run", run_id), ["owner", "workflow_id"])
        found = pipe.execute()
        seen = self.sees([(owner, wf) for owner, wf in found])
        return [run_id for run_id, shown in zip(ids, seen, strict=True) if shown]

    def sees(self, runs: Sequence[tuple[str | None, str | None]]) -> builtins.list[bool]:
        """For each run `(owner, workflow_id)`, whether the audience may see it."""
        if not runs:
            return []
        owners = self._load()
        unknown = sorted(
            {wf for owner, wf in runs if wf and owner not in owners and wf not in self._shared}
            - set(self.workflow_owners)
        )
        if unknown:
            pipe = self.client.pipeline(transaction=False)
            for workflow_id in unknown:
                pipe.hget(self.keys("wf", workflow_id), "owner")
            self.workflow_owners.update(zip(unknown, pipe.execute(), strict=True))
        return [
            owner in owners
            or (wf is not None and (wf in self._shared or self.workflow_owners.get(wf) in owners))
            for owner, wf in runs
        ]
