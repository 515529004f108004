"""Writing node results to the durable result store from inside the task that computed them.

`persist_plan(plan, results)` returns a copy of a plan whose node definitions are wrapped by
`PersistingDefinition`: after a successful call of the node body, the wrapper writes the node's outputs to the
result store under (run id, node id) and only then returns them. The task then returns to the coordinator, which
records the success (and the store's node-run row gets the result location): the result is always durable before
the success is. Retried attempts write only when they succeed; fused groups write one entry per member.

Wrapping the definitions keeps durability out of the executor: the task wrapper, the coordinator and the
in-process executor run a persisted plan exactly like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.compile.plan import Plan, PlannedNode
from engine.durable.results import ResultStore


class PersistingDefinition:
    """A node definition that writes its outputs to a `ResultStore` after each successful call.

    Everything but `invoke` is delegated to the wrapped definition (its `spec`, `new_instance`, ...), so the
    engine cannot tell the difference.
    """

    def __init__(self, inner: Any, results: ResultStore) -> None:
        self.inner = inner
        self.results = results

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally; guard the two own fields so unpickling cannot recurse.
        if name in ("inner", "results"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<PersistingDefinition of {self.inner!r} to {self.results.uri}>"

    def invoke(self, inputs: Mapping[str, Any], params: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Call the node, then write its outputs durably (under the running node's run id and node id)."""
        from nodes import context

        outputs: dict[str, Any] = self.inner.invoke(inputs, params, **kwargs)
        ctx = context.current()
        run_id, node_id = getattr(ctx, "run_id", None), getattr(ctx, "node_id", None)
        if run_id and node_id:
            self.results.put(str(run_id), str(node_id), outputs)
        return outputs


def persist_plan(plan: Plan, results: ResultStore) -> Plan:
    """A copy of `plan` whose top-level nodes and fused members write their results to `results`.

    Map nodes are not wrapped (the engine expands them and never calls their definition), and neither are the
    nodes of their sub-plans: a resumed run recomputes an interrupted map as a whole.
    """

    def wrap(planned: PlannedNode) -> PlannedNode:
        members = tuple(wrap(m) for m in planned.members)
        definition = planned.definition
        control = getattr(getattr(definition, "spec", None), "control", None)
        if definition is not None and control is None and not isinstance(definition, PersistingDefinition):
            definition = PersistingDefinition(definition, results)  # type: ignore[assignment]
        return replace(planned, definition=definition, members=members)

    return replace(plan, nodes=tuple(wrap(p) for p in plan.nodes))
