"""Writing node results to the durable result store from inside the task that computed them.

`persist_plan(plan, results)` returns a copy of a plan whose node definitions are wrapped by
`PersistingDefinition`: after a successful call of the node body, the wrapper writes the node's outputs to the
result store under (run id, node id) and only then returns them. The task then returns to the coordinator, which
records the success (and the store's node-run row gets the result location): the result is always durable before
the success is. Retried attempts write only when they succeed; fused groups write one entry per member.

The wrapper also checks the ports the workflow's outputs read before it writes them: a durable run keeps its
outputs as JSON in the store and the API sends them back, so a value that breaks the limits of that JSON
(`engine.jsonlimits`: too deep, a NUL character or a lone surrogate, a non-finite number) fails its node with
`UnstorableOutputError` naming node, port and output, instead of a run the store cannot finish recording.
(Tables and arrays are left to the run's sink, which converts them once at the end of the run.)

Wrapping the definitions keeps durability out of the executor: the task wrapper, the coordinator and the
in-process executor run a persisted plan exactly like any other.

Map nodes are the exception: the engine expands them and never calls their definition, so the executor hands
the assembled list of each top-level map node to a `MapResultWriter` (its `map_results`) before it records the
node's success: the same check, the same write, the same order.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from engine.compile.plan import Plan, PlannedNode
from engine.durable.errors import UnstorableOutputError
from engine.durable.results import ResultStore
from engine.jsonlimits import MAX_JSON_DEPTH, JsonLimitError, storable
from engine.secrets.refs import refuse_leaks
from engine.workflow.bindings import NodeRef
from nodes.ids import RunId


class PersistingDefinition:
    """A node definition that writes its outputs to a `ResultStore` after each successful call.

    `outputs`: the names of the workflow outputs each port of the node gives (the ports checked against the
    JSON limits before they are written). Everything but `invoke` is delegated to the wrapped definition (its
    `spec`, `new_instance`, ...), so the engine cannot tell the difference.
    """

    def __init__(
        self, inner: Any, results: ResultStore, outputs: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.inner = inner
        self.results = results
        self.outputs = dict(outputs or {})

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally; guard the own fields so unpickling cannot recurse.
        if name in ("inner", "results", "outputs"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<PersistingDefinition of {self.inner!r} to {self.results.uri}>"

    def invoke(self, inputs: Mapping[str, Any], params: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Call the node, then write its outputs durably (under the running node's run id and node id).

        A task that Ray runs again (`ray_reattempt`: its worker died, or the host that held its result was lost
        and Ray reconstructs it) returns the result this node already stored instead of running it twice."""
        from nodes import context

        ctx = context.current()
        run_id, node_id = getattr(ctx, "run_id", None), getattr(ctx, "node_id", None)
        if run_id and node_id and ray_reattempt():
            stored = self._stored(RunId(str(run_id)), str(node_id))
            if stored is not None:
                return stored
        outputs: dict[str, Any] = self.inner.invoke(inputs, params, **kwargs)
        refuse_leaks(outputs)  # a node given a secret never has it written (engine.secrets.refs)
        if self.outputs:
            _check_outputs(str(node_id or self.inner.spec.name), outputs, self.outputs)
        if run_id and node_id:
            self.results.put(RunId(str(run_id)), str(node_id), outputs)
        return outputs

    def stored_by_earlier_attempt(self, run_id: RunId, node_id: str) -> bool:
        """Whether this is a Ray reattempt of a node whose earlier attempt already stored its outputs in this run.

        The task then skips its cache lookup: the node succeeded (its earlier attempt's host died before Ray
        heard of it), and `invoke` returns what it stored, reported as a success, not as a cache hit."""
        return ray_reattempt() and self._stored(run_id, node_id) is not None

    def _stored(self, run_id: RunId, node_id: str) -> dict[str, Any] | None:
        """The outputs this node already stored in this run, or None (none, or unreadable: it runs again)."""
        try:
            return self.results.get(run_id, node_id) if self.results.exists(run_id, node_id) else None
        except Exception:
            return None

    def keep_cached(self, run_id: RunId, node_id: str, outputs: Mapping[str, Any]) -> None:
        """Write the outputs a cache lookup inside the task found for the node (its key is made there, from
        its inputs' content), as `invoke` writes computed ones: the run's outputs are read from the store."""
        if self.outputs:
            _check_outputs(node_id, outputs, self.outputs)
        self.results.put(run_id, node_id, outputs)


def ray_reattempt() -> bool:
    """True inside a Ray task that Ray is running again: its worker or node died, or its result was lost with
    the host that held it and Ray reconstructs it from its lineage (the nodes that read it need it). The
    engine's own retries of a node's exceptions happen inside one Ray attempt and are not reattempts."""
    ray = sys.modules.get("ray")  # only a process that imported Ray can be a Ray task
    if ray is None or not ray.is_initialized():
        return False
    worker = ray._private.worker.global_worker
    if worker.mode != ray.WORKER_MODE:
        return False
    try:
        return int(worker.core_worker.get_current_task_attempt_number()) > 0
    except Exception:  # a Ray without it: run the node, as before
        return False


class MapResultWriter:
    """Writes the assembled outputs of a durable run's top-level map nodes to a `ResultStore` (the executor's
    `map_results`, see `engine.execution.mapping.MapResultRecorder`), checking the ports the workflow's
    outputs read against the JSON limits first, as `PersistingDefinition` does for every other node.

    `outputs`: node id -> port -> the names of the workflow outputs reading it (`output_ports`). Picklable:
    on Ray it travels to the task that assembles the list.
    """

    def __init__(self, results: ResultStore, outputs: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        self.results = results
        self.outputs = {node: dict(ports) for node, ports in outputs.items()}

    def __repr__(self) -> str:
        return f"<MapResultWriter to {self.results.uri}>"

    def put(self, run_id: RunId, node_id: str, outputs: Mapping[str, Any]) -> str:
        """Check, then write the outputs of map node `node_id` of run `run_id`; returns their location.

        Raises `UnstorableOutputError` for a workflow output beyond the JSON limits, `ResultStoreError` when
        the store cannot be written.
        """
        checked = self.outputs.get(node_id)
        if checked:
            _check_outputs(node_id, outputs, checked)
        return self.results.put(run_id, node_id, outputs)


def map_result_writer(plan: Plan, results: ResultStore) -> MapResultWriter:
    """The `MapResultWriter` of a durable run of `plan` (persisted by `persist_plan`) to `results`."""
    return MapResultWriter(results, output_ports(plan))


def unstorable_output(
    names: Sequence[str], node: str, port: str, error: JsonLimitError
) -> UnstorableOutputError:
    """The error of a workflow output (`names`: the outputs reading `port` of `node`) that breaks a JSON limit."""
    which = ", ".join(repr(name) for name in names)
    return UnstorableOutputError(
        f"workflow output {which} (node {node!r}, port {port!r}) cannot be stored: {error}. A durable run keeps "
        f"its outputs as JSON, which nests at most {MAX_JSON_DEPTH} levels and holds no NUL character, lone "
        "surrogate or non-finite number: clean or encode the value before it leaves the workflow (e.g. "
        "binary data as base64 text)"
    )


def _check_outputs(node: str, values: Mapping[str, Any], outputs: Mapping[str, Sequence[str]]) -> None:
    from nodes.skip import is_skip

    for port, names in outputs.items():
        value = values.get(port)
        if port not in values or is_skip(value) or _tabular(value):
            continue
        try:
            storable(value, names[0])
        except JsonLimitError as exc:
            raise unstorable_output(names, node, port, exc) from None


def _tabular(value: Any) -> bool:
    """Tables and arrays: converting them costs; the sink converts (and checks) them once, at the run's end."""
    return any(callable(getattr(value, name, None)) for name in ("to_pylist", "tolist"))


def output_ports(plan: Plan) -> dict[str, dict[str, list[str]]]:
    """The workflow outputs each node's ports give: node id (fused members by their own id) -> port -> names."""
    found: dict[str, dict[str, list[str]]] = {}
    fused = {p.id for p in plan.nodes if p.is_fused}
    for name, binding in plan.outputs.items():
        if not isinstance(binding, NodeRef):
            continue
        node: str = binding.node
        port = binding.port
        if node in fused:
            node, _, port = port.partition(".")
        found.setdefault(node, {}).setdefault(port, []).append(name)
    return found


def persist_plan(plan: Plan, results: ResultStore) -> Plan:
    """A copy of `plan` whose top-level nodes and fused members write their results to `results`.

    Map nodes are not wrapped (the engine expands them and never calls their definition: their results are
    written by the executor through `map_result_writer`), and neither are the nodes of their sub-plans: a
    resumed run recomputes an interrupted map as a whole.
    """

    checked = output_ports(plan)

    def wrap(planned: PlannedNode) -> PlannedNode:
        members = tuple(wrap(m) for m in planned.members)
        definition = planned.definition
        control = getattr(getattr(definition, "spec", None), "control", None)
        if definition is not None and control is None and not isinstance(definition, PersistingDefinition):
            definition = PersistingDefinition(  # type: ignore[assignment]
                definition, results, checked.get(planned.id)
            )
        return replace(planned, definition=definition, members=members)

    return replace(plan, nodes=tuple(wrap(p) for p in plan.nodes))
