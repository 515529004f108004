"""`DurableRecorder`: the recorder that makes a run durable on the one run path (`engine.execution.start`).

Plugged into `start_run`, it makes the run's nodes write their results to the result store (`persist_plan`),
writes the results the run takes from the cache there too (nobody computes them), gives the executor a
`StoreEventSink` (events, node attempts, run status and heartbeats go to the store from the coordinator) and
a writer for the results of top-level map nodes, and wraps the executor's run in a `DurableSource`, which
falls back to the store when the live run is gone. The run is `detached`: it must not depend on the process
that started it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.compile.plan import NodeRef, Plan, PlannedNode
from engine.durable.persist import map_result_writer, persist_plan
from engine.durable.results import ResultStore
from engine.durable.sink import StoreEventSink
from engine.durable.source import DurableSource
from engine.durable.stored import StoredRun
from engine.execution.handle import RunSource
from nodes.ids import NodeId, RunId

if TYPE_CHECKING:
    from engine.cache.result_cache import CacheHit
    from engine.execution.mapping import MapResultRecorder
    from engine.store import Store


class DurableRecorder:
    """Keeps one execution of a durable run in `store` and `results` (see the module docstring).

    `seq_offset`: the events the run stored before this execution (a resumed run continues their sequence).
    `resumed`: this execution resumes an earlier one. `heartbeat_s`: how often the coordinator heartbeats it.
    `lineage_url`: where the run's OpenLineage events go (`engine.lineage.openlineage`; empty: nowhere).
    `bus_url`: the event bus its sink publishes a notice on after each stored batch (`engine.bus`).
    """

    detached = True

    def __init__(
        self,
        store: Store,
        results: ResultStore,
        *,
        seq_offset: int = 0,
        resumed: bool = False,
        heartbeat_s: float = 2.0,
        lineage_url: str = "",
        lineage_namespace: str = "",
        bus_url: str = "",
    ) -> None:
        self.store = store
        self.bus_url = bus_url
        self.lineage_url = lineage_url
        self.lineage_namespace = lineage_namespace
        self.results = results
        self.seq_offset = seq_offset
        self.resumed = resumed
        self.heartbeat_s = heartbeat_s

    def prepare(self, plan: Plan) -> Plan:
        """`plan` with nodes that write their results to the result store."""
        return persist_plan(plan, self.results)

    def record_known(self, run_id: RunId, plan: Plan, hits: Mapping[str, CacheHit]) -> None:
        """Write the cached values of the nodes the workflow outputs read to the result store, where the
        stored run's outputs are read from (nodes that run write theirs themselves)."""
        outputs = {b.node for b in plan.outputs.values() if isinstance(b, NodeRef)}
        by_id: dict[str, PlannedNode] = {p.id: p for p in plan.nodes}
        for node_id, hit in hits.items():
            planned = by_id.get(node_id)
            if planned is None or node_id not in outputs:
                continue
            by_member: dict[NodeId, dict[str, Any]] = {}
            for port, value in hit.values.items():
                member, member_port = member_port_of(planned, port)
                by_member.setdefault(member, {})[member_port] = value
            for member, values in by_member.items():
                self.results.put(run_id, member, values)

    def sink(self, run_id: RunId, plan: Plan) -> StoreEventSink:
        """The store sink the coordinator writes the run's events through."""
        return StoreEventSink(
            str(self.store.connect_url),
            run_id,
            results=self.results,
            seq_offset=self.seq_offset,
            heartbeat_s=self.heartbeat_s,
            resumed=self.resumed,
            outputs=tuple(plan.outputs),
            lineage_url=self.lineage_url,
            lineage_namespace=self.lineage_namespace,
            bus_url=self.bus_url,
        )

    def map_results(self, plan: Plan) -> MapResultRecorder:
        """The writer of the run's top-level map results."""
        return map_result_writer(plan, self.results)

    def source(self, run_id: RunId, source: RunSource) -> RunSource:
        """The live run first, the store once it is gone."""
        return DurableSource(source, StoredRun(self.store, self.results, run_id), self.seq_offset)


def member_port_of(planned: PlannedNode, port: str) -> tuple[NodeId, str]:
    """The document node and its port behind an output port of a planned node (fused: `"member.port"`)."""
    if planned.is_fused:
        member, _, member_port = port.partition(".")
        return NodeId(member), member_port
    return planned.id, port
