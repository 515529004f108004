"""Anomaly detection evaluated on a synthetic history with injected anomalies: precision, recall, delay.

    .venv/bin/python bench/anomaly_bench.py [--runs 400] [--seed 1]

Writes an incremental export (the Parquet layout `sync_export` writes, executions only) of `--runs` runs of three
workflows with two nodes each: durations log-normal around a per-node median, output sizes within a few percent,
2% random failures, peak-memory rises of 20-200 MiB (node n0) or of a few pages (node n1, which allocates
nothing: the detector must not call its noise anomalous). Injected: 3x slowdowns, 5x output blow-ups and memory
blow-ups (5x, at least 100 MiB more; 1.5% of executions each) and failure bursts (five failures in a row, one per
150 executions), all after a warm-up. Prints precision and recall per kind
(target: both >= 0.9) and the detection delay in executions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.parquet as pq

from engine.analytics import RunAnalytics
from engine.analytics.anomalies import detect
from engine.analytics.export import EXECUTION_SCHEMA, FINISHED_NODE_RUN_SCHEMA, FINISHED_RUN_SCHEMA, WATERMARK

T0 = datetime(2026, 10, 1, tzinfo=UTC)
KINDS = ("duration", "output_size", "memory", "failure_burst")
MIB = 2**20


@dataclass
class Truth:
    """What was injected: (kind, workflow, node, run) for single anomalies, bursts as lists of runs."""

    single: set[tuple[str, str, str, str]] = field(default_factory=set)
    bursts: list[tuple[str, str, list[str]]] = field(default_factory=list)


def generate(directory: Path, runs: int = 400, seed: int = 1, warmup: int = 20) -> Truth:
    """Write the synthetic history under `directory`; returns what was injected."""
    rng = random.Random(seed)
    memory_rng = random.Random(seed + 1000)  # its own stream: the other kinds' histories stay as they were
    truth = Truth()
    rows: list[dict[str, Any]] = []
    keys = [
        (f"wf{w}", f"n{n}", rng.uniform(0.5, 5.0), rng.uniform(1e4, 1e6)) for w in range(3) for n in range(2)
    ]
    burst_left: dict[tuple[str, str], list[str]] = {}
    memory_base = {node: memory_rng.uniform(20, 200) * MIB for node in ("n0",)}
    for i in range(runs):
        created = T0 + timedelta(minutes=10 * i)
        for wf, node, median, size in keys:
            run = f"{wf}-r{i}"
            span = median * rng.lognormvariate(0, 0.15)
            out = size * rng.uniform(0.97, 1.03)
            failed = rng.random() < 0.02
            key = (wf, node)
            if i >= warmup:
                if key in burst_left:
                    failed = True
                    burst_left[key].append(run)
                    if len(burst_left[key]) == 5:
                        truth.bursts.append((wf, node, burst_left.pop(key)))
                elif rng.random() < 1 / 150:
                    failed = True
                    burst_left[key] = [run]
                elif rng.random() < 0.015:
                    span *= 3
                    truth.single.add(("duration", wf, node, run))
                elif rng.random() < 0.015:
                    out *= 5
                    truth.single.add(("output_size", wf, node, run))
            if node in memory_base:
                memory = int(memory_base[node] * memory_rng.uniform(0.9, 1.1))
            else:
                memory = memory_rng.choice([0, 0, 0, 4096, 8192, 65536])
            if i >= warmup and not failed and memory_rng.random() < 0.015:
                memory = max(memory * 5, memory + 100 * MIB)
                truth.single.add(("memory", wf, node, run))
            rows.append(
                {
                    "run_id": run,
                    "node_id": node,
                    "workflow_id": wf,
                    "workflow_version": 1,
                    "owner": "bench",
                    "node_type": f"bench/{node}@1",
                    "attempts": 1,
                    "cache_hit": False,
                    "cache_level": None,
                    "final_status": "failed" if failed else "succeeded",
                    "error_type": "BenchError" if failed else None,
                    "output_bytes": None if failed else int(out),
                    "started_at": created,
                    "finished_at": created + timedelta(seconds=span),
                    "span_s": span,
                    "last_duration_s": span,
                    "cpu_s": None if failed else span * 0.9,
                    "memory_bytes": None if failed else memory,
                    "run_created_at": created,
                    "day": "all",
                }
            )
    for name, schema, data in (
        ("executions", EXECUTION_SCHEMA, rows),
        ("runs", FINISHED_RUN_SCHEMA, []),
        ("node_runs", FINISHED_NODE_RUN_SCHEMA, []),
    ):
        folder = directory / name / "day=all"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(data, schema=schema).drop_columns(["day"])
        pq.write_table(table, folder / "part-0.parquet")
    (directory / WATERMARK).write_text(json.dumps({"finished_until": None}))
    return truth


def evaluate(directory: Path, truth: Truth) -> dict[str, dict[str, float]]:
    """Precision, recall and mean delay per kind of the detector over the history under `directory`."""
    with RunAnalytics(directory) as analytics:
        found = detect(analytics)
    figures: dict[str, dict[str, float]] = {}
    for kind in ("duration", "output_size", "memory"):
        got = {(a.kind, a.workflow_id, a.node_id, a.run_id) for a in found if a.kind == kind}
        injected = {t for t in truth.single if t[0] == kind}
        hits = got & injected
        figures[kind] = {
            "injected": len(injected),
            "detected": len(got),
            "precision": len(hits) / len(got) if got else 1.0,
            "recall": len(hits) / len(injected) if injected else 1.0,
            "delay": 0.0,
        }
    bursts = [a for a in found if a.kind == "failure_burst"]
    matched, delays = 0, []
    for wf, node, burst_runs in truth.bursts:
        hit = [a for a in bursts if (a.workflow_id, a.node_id) == (wf, node) and a.run_id in burst_runs]
        if hit:
            matched += 1
            delays.append(burst_runs.index(hit[0].run_id))
    true_alarms = sum(
        any((a.workflow_id, a.node_id) == (wf, node) and a.run_id in runs for wf, node, runs in truth.bursts)
        for a in bursts
    )
    figures["failure_burst"] = {
        "injected": len(truth.bursts),
        "detected": len(bursts),
        "precision": true_alarms / len(bursts) if bursts else 1.0,
        "recall": matched / len(truth.bursts) if truth.bursts else 1.0,
        "delay": sum(delays) / len(delays) if delays else 0.0,
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = generate(Path(tmp), args.runs, args.seed)
        for kind, f in evaluate(Path(tmp), truth).items():
            print(
                f"{kind:14} injected {f['injected']:4.0f} detected {f['detected']:4.0f} "
                f"precision {f['precision']:.3f} recall {f['recall']:.3f} delay {f['delay']:.1f} executions"
            )


if __name__ == "__main__":
    main()
