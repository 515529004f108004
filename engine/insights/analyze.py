"""Insights on a workflow with history: what to change and by how much the median run should get shorter.

Read from the incremental analytics export (`RunAnalytics`), the workflow's latest document and the node
catalog's declarations; only runs of the latest version count (an earlier version may have other nodes).

- `critical_path`: the chain of nodes that sets a run's length under each node's median time, with its
  bottlenecks (nodes holding at least a quarter of it). No edit.
- `cache`: a deterministic node whose caching the document turned off (`"cache": false`), which takes real time
  and whose inputs repeat across runs (it reads only workflow inputs and constants, through deterministic nodes,
  and runs repeated those inputs). Edit: turn caching back on.
- `retry_never_succeeds`: a node retried in several runs where no retry ever succeeded: the retries only delay
  the failure. Edit: one attempt (`"retry": {"max_attempts": 1}`).
- `flaky`: a node that fails an attempt and then succeeds on a retry in a noticeable share of runs, or whose
  runs end both ways. No edit (the fix is in the node or what it calls).
- `resources`: a node whose document declares `resources.num_cpus` or `resources.memory` far from what its
  executions were measured to use (`engine.execution.usage`): CPU-seconds per second of its last attempt at the
  95th percentile against `num_cpus`, its highest peak-memory rise against `memory` (bytes). Edit: the
  suggested request (`"resources": {...}`, other resource fields kept). No time saving is predicted: a smaller
  request frees capacity for other work, a larger one keeps the node from being killed.

- `needless_edge`: an edge into an input port that the node's Python body never reads (static analysis of its
  source, `engine.insights.unread`; conservative: when unsure, nothing is claimed), so the node waits for its
  upstream node for nothing. Each run is replayed from its recorded timeline without the edge
  (`engine.insights.edges`) to say how much sooner the node and the run would finish. Edit: unbind the port
  (`"in": {"port": null}`), only where the port is optional (a default, or an optional type); a required one
  needs the node's signature changed first, said in the message, and no edit is offered.

Each insight's `predicted_saving_s` is the median run time of the history minus the median of the same runs'
durations with the edit's effect removed (a run's saving only where the node lies on its critical path).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.analytics.dag import critical_path, upstream
from engine.analytics.queries import RunAnalytics
from engine.insights.edges import ancestors, needed, needless_bindings, replay, without_binding
from engine.insights.unread import UnreadPort
from nodes.states import NodeStatus

#: A node is worth caching from this median time on (seconds) ...
CACHE_MIN_S = 0.2
#: ... when at least this share of runs repeated its inputs.
CACHE_MIN_REPEAT = 0.3
#: Retried executions needed before calling retries useless.
RETRY_MIN_EVIDENCE = 3
#: Share of executions succeeding only after a retry from which a node is flaky.
FLAKY_MIN_SHARE = 0.05
#: Runs of the latest version needed before any insight.
MIN_RUNS = 3
#: Measured executions of a node needed before a resource suggestion.
RESOURCE_MIN_EVIDENCE = 3
#: A request is "far" from use when it is this many times the suggestion (or the use exceeds the request).
RESOURCE_FACTOR = 2.0
#: Headroom over the measured use in a suggested request.
RESOURCE_HEADROOM = 1.5
#: The smallest memory request suggested, and the smallest change of a memory request worth suggesting.
MEMORY_MIN_BYTES = 64 * 2**20
_DONE = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CACHED})


@dataclass(frozen=True)
class Insight:
    """One finding: its kind, the node(s) concerned, what to do, the evidence, and where it is an edit, the edit
    (`edit`: node id -> fields to set on that node in the document) and the median run time it should save."""

    id: str
    kind: str
    nodes: list[str]
    message: str
    evidence: dict[str, Any]
    edit: dict[str, dict[str, Any]] | None = None
    predicted_saving_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Insights:
    """Every insight on one workflow version, with the history they come from."""

    workflow_id: str
    version: int
    runs: int
    median_run_s: float | None
    insights: list[Insight] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`rayweave optimize --json`, `POST /v1/workflows/{id}/optimize`)."""
        return {
            "workflow_id": self.workflow_id,
            "version": self.version,
            "runs": self.runs,
            "median_run_s": self.median_run_s,
            "insights": [i.to_json() for i in self.insights],
            "notes": self.notes,
        }


@dataclass
class _Execution:
    run_id: str
    node: str
    attempts: int
    cache_hit: bool
    final: str
    span: float
    first: float
    cpu_s: float | None = None
    memory_bytes: int | None = None
    last_s: float | None = None
    #: Seconds from the run's start to the execution's first start and last finish (None when not recorded).
    start: float | None = None
    end: float | None = None


@dataclass
class _Run:
    id: str
    duration: float
    status: str
    nodes: dict[str, _Execution] = field(default_factory=dict)


def analyze(
    analytics: RunAnalytics,
    workflow_id: str,
    version: int,
    document: Mapping[str, Any],
    *,
    deterministic: Mapping[str, bool] | None = None,
    run_inputs: Mapping[str, Mapping[str, Any]] | None = None,
    unread: Mapping[str, Sequence[UnreadPort]] | None = None,
    branching: frozenset[str] = frozenset(),
) -> Insights:
    """The insights on `workflow_id` at `version` (its `document`). `deterministic`: node type id -> declared
    deterministic and cacheable (from the catalog; unknown types are never suggested for caching). `run_inputs`:
    run id -> the run's inputs (to see whether a node's inputs repeat; without them no caching is suggested).
    `unread`: node type id -> the input ports its body never reads (`engine.insights.unread.unread_inputs`;
    without it no edge is called needless). `branching`: the node type ids that may skip a branch (an edge
    from a node at or below one also skips the node it feeds: never called needless)."""
    runs = _history(analytics, workflow_id, version)
    notes: list[str] = []
    if unread is None:
        notes.append("node bodies were not analysed: no needless edge is looked for")
    if len(runs) < MIN_RUNS:
        notes.insert(0, f"{len(runs)} finished run(s) of version {version}: at least {MIN_RUNS} are needed")
        return Insights(
            workflow_id, version, len(runs), _median([r.duration for r in runs.values()]), [], notes
        )
    edges = upstream(document)
    nodes = dict(document.get("nodes") or {})
    medians = {
        n: _median([r.nodes[n].span for r in runs.values() if n in r.nodes and not r.nodes[n].cache_hit])
        or 0.0
        for n in edges
    }
    median_run = _median([r.duration for r in runs.values()])
    found: list[Insight] = []
    path = critical_path(edges, medians)
    bottlenecks = [n for n in path.nodes if path.share(n) >= 0.25]
    found.append(
        Insight(
            id="critical_path",
            kind="critical_path",
            nodes=path.nodes,
            message=(
                f"the critical path {' -> '.join(path.nodes)} takes {path.total_s:.2f} s at median node times; "
                + (
                    f"{', '.join(bottlenecks)} hold{'s' if len(bottlenecks) == 1 else ''} most of it"
                    if bottlenecks
                    else "no node holds a quarter of it"
                )
            ),
            evidence={
                "runs": len(runs),
                "median_run_s": median_run,
                "path_s": path.total_s,
                "node_median_s": {n: medians[n] for n in path.nodes},
                "share": {n: round(path.share(n), 3) for n in path.nodes},
                "bottlenecks": bottlenecks,
            },
        )
    )
    found.extend(_retries(runs, nodes, edges))
    found.extend(_flaky(runs, edges))
    found.extend(_caching(runs, nodes, edges, medians, deterministic or {}, run_inputs or {}))
    found.extend(_resources(runs, nodes))
    found.extend(_needless_edges(runs, document, edges, unread or {}, branching))
    return Insights(workflow_id, version, len(runs), median_run, found, notes)


def _history(analytics: RunAnalytics, workflow_id: str, version: int) -> dict[str, _Run]:
    began: dict[str, Any] = {}
    runs: dict[str, _Run] = {}
    for r in analytics.execute(
        "SELECT run_id, duration_s, status, coalesce(started_at, created_at) FROM runs "
        "WHERE workflow_id = ? AND workflow_version = ? AND duration_s IS NOT NULL ORDER BY created_at",
        [workflow_id, version],
    ):
        runs[str(r[0])] = _Run(str(r[0]), float(r[1] or 0.0), str(r[2]))
        began[str(r[0])] = r[3]
    if not runs:
        return runs
    for row in analytics.execute(
        """
        SELECT e.run_id, e.node_id, e.attempts, e.cache_hit, e.final_status, coalesce(e.span_s, 0),
               coalesce(f.duration_s, 0), l.cpu_s, e.memory_bytes, e.last_duration_s, e.started_at,
               e.finished_at
        FROM executions e LEFT JOIN attempts f
             ON f.run_id = e.run_id AND f.node_id = e.node_id AND f.attempt = 1
             LEFT JOIN attempts l
             ON l.run_id = e.run_id AND l.node_id = e.node_id AND l.attempt = e.attempts
        WHERE e.workflow_id = ? AND e.workflow_version = ?
        """,
        [workflow_id, version],
    ):
        run = runs.get(str(row[0]))
        if run is not None:
            run.nodes[str(row[1])] = _Execution(
                str(row[0]),
                str(row[1]),
                int(row[2]),
                bool(row[3]),
                str(row[4]),
                float(row[5]),
                float(row[6]),
                None if row[7] is None else float(row[7]),
                None if row[8] is None else int(row[8]),
                None if row[9] is None else float(row[9]),
                _offset(began[run.id], row[10]),
                _offset(began[run.id], row[11]),
            )
    return runs


def _offset(start: Any, moment: Any) -> float | None:
    return None if start is None or moment is None else float((moment - start).total_seconds())


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _predicted_saving(runs: dict[str, _Run], cut: dict[str, float]) -> float:
    """Median run time minus the median with `cut[run id]` seconds taken off each run; never negative."""
    before = [r.duration for r in runs.values()]
    after = [max(r.duration - cut.get(r.id, 0.0), 0.0) for r in runs.values()]
    return max(statistics.median(before) - statistics.median(after), 0.0)


def _on_path(run: _Run, edges: Mapping[str, list[str]], node: str) -> bool:
    spans = {n: e.span for n, e in run.nodes.items()}
    ran = {n: [u for u in ups if u in spans] for n, ups in edges.items() if n in spans}
    return node in critical_path(ran, spans).nodes if ran else False


def _retries(
    runs: dict[str, _Run], nodes: Mapping[str, Any], edges: Mapping[str, list[str]]
) -> list[Insight]:
    found = []
    for node in edges:
        retried = [r.nodes[node] for r in runs.values() if node in r.nodes and r.nodes[node].attempts > 1]
        if len(retried) < RETRY_MIN_EVIDENCE or any(e.final != NodeStatus.FAILED for e in retried):
            continue
        wasted = {e.run_id: max(e.span - e.first, 0.0) for e in retried}
        saving = _predicted_saving(runs, wasted)
        found.append(
            Insight(
                id=f"retry_never_succeeds:{node}",
                kind="retry_never_succeeds",
                nodes=[node],
                message=(
                    f"node {node!r} was retried in {len(retried)} runs and no retry ever succeeded: the retries "
                    f"only delay the failure by {statistics.median(wasted.values()):.2f} s (median); allow one "
                    "attempt, or retry only the exceptions that pass (retry_on)"
                ),
                evidence={
                    "retried_runs": len(retried),
                    "succeeded_after_retry": 0,
                    "median_attempts": statistics.median(e.attempts for e in retried),
                    "median_wasted_s": statistics.median(wasted.values()),
                    "retry": dict((nodes.get(node) or {}).get("retry") or {}),
                },
                edit={node: {"retry": {"max_attempts": 1}}},
                predicted_saving_s=saving,
            )
        )
    return found


def _flaky(runs: dict[str, _Run], edges: Mapping[str, list[str]]) -> list[Insight]:
    found = []
    for node in edges:
        ran = [r.nodes[node] for r in runs.values() if node in r.nodes and not r.nodes[node].cache_hit]
        if len(ran) < MIN_RUNS:
            continue
        recovered = [e for e in ran if e.attempts > 1 and e.final in _DONE]
        failed = [e for e in ran if e.final == NodeStatus.FAILED]
        succeeded = [e for e in ran if e.final in _DONE]
        share = len(recovered) / len(ran)
        mixed = (
            bool(failed)
            and bool(succeeded)
            and min(len(failed), len(succeeded)) / len(ran) >= FLAKY_MIN_SHARE
        )
        if share < FLAKY_MIN_SHARE and not mixed:
            continue
        found.append(
            Insight(
                id=f"flaky:{node}",
                kind="flaky",
                nodes=[node],
                message=(
                    f"node {node!r} is flaky: {len(recovered)} of {len(ran)} runs succeeded only after a retry"
                    + (f", and {len(failed)} failed while {len(succeeded)} succeeded" if mixed else "")
                    + "; look at what it calls (timeouts, rate limits, shared state)"
                ),
                evidence={
                    "executions": len(ran),
                    "succeeded_after_retry": len(recovered),
                    "failed_runs": len(failed),
                    "succeeded_runs": len(succeeded),
                    "retry_share": round(share, 3),
                },
            )
        )
    return found


def _caching(
    runs: dict[str, _Run],
    nodes: Mapping[str, Any],
    edges: Mapping[str, list[str]],
    medians: Mapping[str, float],
    deterministic: Mapping[str, bool],
    run_inputs: Mapping[str, Mapping[str, Any]],
) -> list[Insight]:
    found = []
    for node, spec in nodes.items():
        if not isinstance(spec, Mapping) or spec.get("cache") is not False:
            continue
        sources = _input_sources(node, nodes, edges, deterministic)
        if sources is None or medians.get(node, 0.0) < CACHE_MIN_S or not run_inputs:
            continue
        seen: set[str] = set()
        cut: dict[str, float] = {}
        repeats = 0
        for run in runs.values():
            key = json.dumps(
                {k: (run_inputs.get(run.id) or {}).get(k) for k in sorted(sources)}, sort_keys=True
            )
            execution = run.nodes.get(node)
            if key in seen and execution is not None:
                repeats += 1
                if _on_path(run, edges, node):
                    cut[run.id] = execution.span
            seen.add(key)
        share = repeats / len(runs)
        if share < CACHE_MIN_REPEAT:
            continue
        found.append(
            Insight(
                id=f"cache:{node}",
                kind="cache",
                nodes=[node],
                message=(
                    f"node {node!r} is deterministic, takes {medians[node]:.2f} s (median) and {repeats} of "
                    f"{len(runs)} runs repeated its inputs, but its caching is turned off: turn it on"
                ),
                evidence={
                    "median_s": medians[node],
                    "runs": len(runs),
                    "runs_repeating_inputs": repeats,
                    "repeat_share": round(share, 3),
                    "inputs_from": sorted(sources),
                },
                edit={node: {"cache": True}},
                predicted_saving_s=_predicted_saving(runs, cut),
            )
        )
    return found


def _input_sources(
    node: str, nodes: Mapping[str, Any], edges: Mapping[str, list[str]], deterministic: Mapping[str, bool]
) -> set[str] | None:
    """The workflow inputs `node` reads, directly or through deterministic nodes; None when something on the
    way is not deterministic (or of an unknown type), so equal workflow inputs need not mean equal node inputs."""
    found: set[str] = set()
    stack, visited = [node], set()
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        spec = nodes.get(current) or {}
        if not deterministic.get(str(spec.get("type", "")), False):
            return None
        for binding in dict(spec.get("in") or {}).values():
            for item in binding if isinstance(binding, list) else [binding]:
                if isinstance(item, str) and item.startswith("$inputs."):
                    found.add(item.removeprefix("$inputs."))
        stack.extend(edges.get(current, []))
    return found


def _resources(runs: dict[str, _Run], nodes: Mapping[str, Any]) -> list[Insight]:
    """Nodes whose declared `num_cpus` or `memory` is far from their measured use (see the module docstring)."""
    found = []
    for node, spec in nodes.items():
        declared = dict(spec.get("resources") or {}) if isinstance(spec, Mapping) else {}
        if not declared:
            continue
        measured = [
            e
            for r in runs.values()
            if (e := r.nodes.get(node)) is not None and not e.cache_hit and e.cpu_s is not None
        ]
        if len(measured) < RESOURCE_MIN_EVIDENCE:
            continue
        suggestion: dict[str, Any] = {}
        evidence: dict[str, Any] = {"executions": len(measured), "declared": declared}
        reasons: list[str] = []
        cpus = declared.get("num_cpus")
        rates = [e.cpu_s / e.last_s for e in measured if e.cpu_s is not None and e.last_s]
        if isinstance(cpus, int | float) and cpus > 0 and len(rates) >= RESOURCE_MIN_EVIDENCE:
            used = _quantile(rates, 0.95)
            want = max(math.ceil(used * RESOURCE_HEADROOM * 4) / 4, 0.25)  # in quarters of a CPU
            evidence.update(
                cpu_per_s_p95=round(used, 3), cpu_s_median=_median([e.cpu_s or 0.0 for e in measured])
            )
            if cpus >= want * RESOURCE_FACTOR and cpus - want >= 1:
                suggestion["num_cpus"] = int(want) if want == int(want) else want
                reasons.append(f"asks for {cpus} CPUs and used {used:.2f} CPU-seconds per second at p95")
        memory = declared.get("memory")
        peaks = [e.memory_bytes for e in measured if e.memory_bytes is not None]
        if isinstance(memory, int | float) and memory > 0 and len(peaks) >= RESOURCE_MIN_EVIDENCE:
            peak = max(peaks)
            want_bytes = max(_mib_ceil(peak * RESOURCE_HEADROOM), MEMORY_MIN_BYTES)
            evidence.update(memory_max_bytes=peak, memory_median_bytes=_median([float(p) for p in peaks]))
            if peak > memory:
                suggestion["memory"] = want_bytes
                reasons.append(f"asks for {_mib(memory)} of memory and used up to {_mib(peak)}")
            elif memory >= want_bytes * RESOURCE_FACTOR and memory - want_bytes >= MEMORY_MIN_BYTES:
                suggestion["memory"] = want_bytes
                reasons.append(f"asks for {_mib(memory)} of memory and used at most {_mib(peak)}")
        if not suggestion:
            continue
        evidence["suggested"] = suggestion
        found.append(
            Insight(
                id=f"resources:{node}",
                kind="resources",
                nodes=[node],
                message=(
                    f"node {node!r} {' and '.join(reasons)} over {len(measured)} executions: request "
                    + ", ".join(f"{k}={_mib(v) if k == 'memory' else v}" for k, v in suggestion.items())
                    + " (CPU measured on the thread running the node; memory as the worker's peak rise)"
                ),
                evidence=evidence,
                edit={node: {"resources": {**declared, **suggestion}}},
            )
        )
    return found


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _mib_ceil(value: float) -> int:
    return math.ceil(value / 2**20) * 2**20


def _mib(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


def _needless_edges(
    runs: dict[str, _Run],
    document: Mapping[str, Any],
    edges: Mapping[str, list[str]],
    unread: Mapping[str, Sequence[UnreadPort]],
    branching: frozenset[str],
) -> list[Insight]:
    """Edges into ports the node's body never reads, with each run replayed without them (`engine.insights.edges`).
    An edge from a node at or below a branching node is left alone: a skipped branch's `SKIP` skips the node
    it reaches, read or not, and unbinding it would run the node anyway."""
    found = []
    nodes = dict(document.get("nodes") or {})
    keep_before = needed(document, edges)
    for edge in needless_bindings(nodes, unread):
        if any(
            str((nodes.get(n) or {}).get("type", "")) in branching
            for source in edge.sources
            for n in ancestors(edges, source)
        ):
            continue
        changed = without_binding(document, edge.node, edge.port)
        after = upstream(changed)
        freed = [s for s in edge.sources if s not in after[edge.node]]
        if not freed:
            continue  # the node reads these sources through another port too: it waits for them anyway
        keep_after = needed(changed, after)
        cut: dict[str, float] = {}
        sooner: list[float] = []
        for run in runs.values():
            replayed = replay(run, edges, after, keep_before, keep_after, edge.node)
            if replayed is None:
                continue
            cut[run.id] = replayed.run_saving_s
            if replayed.node_saving_s is not None:
                sooner.append(replayed.node_saving_s)
        if not cut:
            continue
        saving = _predicted_saving(runs, cut)
        dropped = sorted(keep_before - keep_after)
        node_s = _median(sooner)
        where = f"node {edge.node!r} never reads its input {edge.port!r}"
        them = "them" if len(freed) > 1 else "it"
        fix = (
            f"unbind {edge.port!r} (it is optional; applied only when named, as the node then no longer runs "
            f"after {them}: keep the edge if that order matters, e.g. for side effects)"
            if edge.optional
            else (
                f"{edge.port!r} is required: change the node's signature (give it a default, or remove the "
                "parameter), then unbind it"
            )
        )
        found.append(
            Insight(
                id=f"needless_edge:{edge.node}.{edge.port}",
                kind="needless_edge",
                nodes=[*freed, edge.node],
                message=(
                    f"{where} (its body does not use the parameter), yet it is bound to "
                    f"{', '.join(freed)}, so it waits for {them}: without the "
                    f"edge it would finish {node_s or 0.0:.2f} s sooner and the run {saving:.2f} s sooner "
                    f"(median of {len(cut)} runs replayed, if the nodes have room to run at once)"
                    + (f"; {', '.join(dropped)} would then feed no output and be dropped" if dropped else "")
                    + f"; {fix}"
                ),
                evidence={
                    "port": edge.port,
                    "bound_to": edge.binding,
                    "sources": freed,
                    "port_optional": edge.optional,
                    "runs_replayed": len(cut),
                    "node_finishes_sooner_s": node_s,
                    "dropped_nodes": dropped,
                    "analysis": "static: the parameter is never read in the node's Python body",
                },
                edit={edge.node: {"in": {edge.port: None}}} if edge.optional else None,
                predicted_saving_s=saving,
            )
        )
    return found
