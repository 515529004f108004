"""Debugging runs: "run to here" (`targets`) and "re-run this node" with the inputs it had in an earlier run.

A run launched with `targets` runs only those nodes and their ancestors; its outputs are the targets' output
ports (`node__port`), and the run keeps a copy of its document declaring just those outputs
(`targeted_document`), which is what every reader of a run's outputs goes by. A run launched with `inputs_from` as well takes the outputs of the targets' upstream nodes
from that earlier run's result store (`recorded_seeds`) instead of computing them, so a node is re-run with
exactly the inputs it was given then.

What such a run was launched with is kept in a small JSON blob of the run's result store (`LAUNCH_BLOB`, written
by `DurableRunner.launch`, read by `launch_record`): the store's run row has no column for it, and the API shows
it with the run (`targets`, `rerun_of`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.durable.errors import DurableError, ResultNotFoundError
from engine.durable.results import ResultStore
from nodes.ids import NodeId, RunId
from nodes.states import NodeStatus

if TYPE_CHECKING:
    from engine.compile.plan import Plan
    from engine.store import Store

#: The run-level blob naming what a debugging run was launched with: `{"targets": [...], "inputs_from": id}`.
LAUNCH_BLOB = "launch.json"
#: Node-run statuses whose stored result is what the node gave its readers.
_GAVE_OUTPUTS = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CACHED})


class NoRecordedInputsError(DurableError, ValueError):
    """A node cannot be re-run with its recorded inputs: an upstream node of it gave no outputs in that run."""


def targeted_document(document: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """`document` declaring the outputs of `plan` (compiled with `targets`) instead of its own."""
    from engine.compile.plan import NodeRef
    from engine.durable.recorder import member_port_of

    by_id = {p.id: p for p in plan.nodes}
    outputs: dict[str, str] = {}
    for name, binding in plan.outputs.items():
        if isinstance(binding, NodeRef) and binding.node in by_id:
            node, port = member_port_of(by_id[binding.node], binding.port)
            outputs[name] = f"{node}.{port}"
    return {**document, "outputs": outputs}


def write_launch_record(
    results: ResultStore, run_id: RunId, targets: Sequence[str] | None, inputs_from: RunId | None
) -> None:
    """Keep what a debugging run was launched with (nothing for an ordinary run)."""
    if not targets and inputs_from is None:
        return
    record = {"targets": list(targets or ()), "inputs_from": inputs_from}
    results.put_blob(run_id, LAUNCH_BLOB, json.dumps(record).encode("utf-8"))


def launch_record(results: ResultStore, run_id: RunId) -> dict[str, Any]:
    """What a debugging run was launched with (`targets`, `inputs_from`); `{}` for an ordinary run or when the
    record cannot be read (the run's results were deleted)."""
    try:
        data = json.loads(results.get_blob(run_id, LAUNCH_BLOB))
    except (ResultNotFoundError, OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def recorded_seeds(
    store: Store, results: ResultStore, source: RunId, plan: Plan, targets: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The outputs the targets' upstream nodes gave in run `source`, as seeds of `plan` (node -> port -> value).

    `plan` must be compiled without optimization (so each planned node is one document node). Only the ports
    the targets read are loaded. An upstream node that was skipped seeds `SKIP`; one whose result the run did not
    keep (a cache hit that no workflow output read) is left out: the new run takes it from the cache or computes
    it. Raises `NoRecordedInputsError` naming the node when an upstream node did not succeed in `source`.
    """
    from engine.compile.plan import node_refs
    from nodes import SKIP

    wanted: dict[str, set[str]] = {}
    target_set = set(targets)
    for planned in plan.nodes:
        if planned.id not in target_set:
            continue
        for binding in planned.inputs.values():
            for ref in node_refs(binding):
                if ref.node not in target_set:
                    wanted.setdefault(ref.node, set()).add(ref.port)
    latest = store.node_runs.latest(source)
    seeds: dict[str, dict[str, Any]] = {}
    for node, ports in wanted.items():
        row = latest.get(NodeId(node))
        status = row.status if row is not None else NodeStatus.PENDING
        if status == NodeStatus.SKIPPED:
            seeds[node] = dict.fromkeys(ports, SKIP)
            continue
        if status not in _GAVE_OUTPUTS:
            raise NoRecordedInputsError(
                f"node {node!r} ended {status} in run {source!r}, so there are no recorded inputs to re-run "
                f"{', '.join(sorted(target_set))} with; run the whole workflow, or run to here"
            )
        try:
            seeds[node] = results.get(source, node, tuple(sorted(ports)))
        except ResultNotFoundError:
            continue  # not kept (a cache hit nobody read): the cache or the node itself answers again
    return seeds
