"""The sealed secrets of one run: what the run path gives the executor for the nodes that refer to secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.secrets.refs import KeySource, RunSecrets, secret_names
from engine.secrets.service import sealed_of

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.compile.plan import Plan
    from engine.store.protocol import Store

__all__ = ["plan_secret_names", "run_secrets_for"]


def plan_secret_names(plan: Plan) -> set[str]:
    """The secrets the nodes of a plan refer to, map sub-plans included."""
    names: set[str] = set()
    for planned in plan.nodes:
        names |= secret_names(planned.params)
        for member in planned.members:  # a fused group's nodes
            names |= secret_names(member.params)
        sub = getattr(planned, "subplan", None)
        if sub is not None:
            names |= plan_secret_names(sub)
    return names


def run_secrets_for(
    store: Store, settings: Settings, plan: Plan, owner: str, run_id: str = ""
) -> RunSecrets | None:
    """The owner's sealed secrets that `plan` refers to (None when it refers to none). Names the owner has no
    secret of are recorded as missing: the nodes naming them fail with a clear error, the others run. Each
    secret handed to a run is audited (`secrets.read`, with the run id; never the value)."""
    from engine.store.errors import NotFoundError

    names = plan_secret_names(plan)
    if not names:
        return None
    sealed, missing = {}, set()
    for name in sorted(names):
        try:
            row = store.secrets.get(owner, name)
        except NotFoundError:
            missing.add(name)
            outcome = "error"
        else:
            sealed[name] = sealed_of(row)
            outcome = "ok"
        store.audit.append(
            owner,
            "secrets.read",
            resource_type="secrets",
            resource_id=f"{owner}/{name}",
            outcome=outcome,
            details={
                "run_id": run_id,
                "plan": plan.name,
                **({"missing": True} if outcome == "error" else {}),
            },
        )
    return RunSecrets(owner, sealed, KeySource.of(settings), frozenset(missing))
