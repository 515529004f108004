"""Does a learned detector earn its keep? scikit-learn's IsolationForest against the robust statistics of
`engine.analytics.anomalies`, on the synthetic history of `bench/anomaly_bench.py`.

    .venv/bin/python bench/anomaly_iforest_bench.py [--seeds 1 2 3] [--runs 400] [--modes online offline]
                                                    [--contamination 0.03]

Each succeeded execution is a feature vector per key (workflow, node): log duration, log output bytes and
log(1 + peak-memory rise). Two ways of using the forest, both per key and in run order like the robust detector:

- `online`: after the same warm-up of 10, a forest fitted on the previous 50 executions of the key (the robust
  detector's window) scores the next one; refitted every 10 executions (fitting at every one is ~100x slower);
- `offline`: one forest per key fitted on the key's whole history (it sees the future: an upper bound of what
  a batch job could do).

A flagged execution is attributed to the kind whose feature deviates most from the key's median in MADs (the
forest itself says only "unusual"), and must be in the upper tail (slower, bigger) to count: a forest also
flags unusually fast or small executions, which are no anomaly of the three kinds. Failure bursts are sequences
of outcomes, not feature vectors; the forest is not asked about them. Prints precision and recall per kind of
the three detectors, and their time.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anomaly_bench import evaluate, generate
from engine.analytics import RunAnalytics

KINDS = ("duration", "output_size", "memory")
WARMUP, WINDOW, REFIT = 10, 50, 10


def _rows(directory: Path) -> list[tuple[Any, ...]]:
    with RunAnalytics(directory) as analytics:
        return analytics.execute(
            """SELECT workflow_id, node_id, run_id, final_status, span_s, output_bytes, memory_bytes
               FROM executions ORDER BY workflow_id, node_id, run_created_at, run_id"""
        )


def _features(span: float, size: float, memory: float) -> list[float]:
    return [math.log(max(span, 1e-6)), math.log(max(size, 1.0)), math.log1p(max(memory, 0.0))]


def _kind(vector: list[float], history: list[list[float]]) -> str | None:
    """The kind whose feature stands out most above the key's median (in MADs), or None when none is above."""
    best, kind = 0.0, None
    for i, name in enumerate(KINDS):
        column = [h[i] for h in history]
        median = statistics.median(column)
        mad = statistics.median(abs(v - median) for v in column) * 1.4826 or 1e-3
        z = (vector[i] - median) / mad
        if z > best:
            best, kind = z, name
    return kind


def _flagged(
    rows: list[tuple[Any, ...]], mode: str, seed: int, contamination: Any
) -> set[tuple[str, str, str, str]]:
    from sklearn.ensemble import IsolationForest

    keys: dict[tuple[str, str], list[tuple[str, list[float]]]] = defaultdict(list)
    for wf, node, run, status, span, size, memory in rows:
        if status == "succeeded" and span is not None and size is not None and memory is not None:
            keys[(wf, node)].append((run, _features(span, size, memory)))
    found: set[tuple[str, str, str, str]] = set()
    for (wf, node), executions in keys.items():
        vectors = [v for _, v in executions]
        if mode == "offline":
            forest = IsolationForest(n_estimators=100, contamination=contamination, random_state=seed).fit(
                vectors
            )
            labels = forest.predict(vectors)
            for (run, vector), label in zip(executions, labels, strict=True):
                kind = _kind(vector, vectors) if label == -1 else None
                if kind:
                    found.add((kind, wf, node, run))
            continue
        forest = None
        for i in range(WARMUP, len(executions)):
            history = vectors[max(0, i - WINDOW) : i]
            if forest is None or (i - WARMUP) % REFIT == 0:
                forest = IsolationForest(
                    n_estimators=100, contamination=contamination, random_state=seed
                ).fit(history)
            if forest.predict([vectors[i]])[0] == -1:
                kind = _kind(vectors[i], history)
                if kind:
                    found.add((kind, wf, node, executions[i][0]))
    return found


def _figures(found: set[tuple[str, str, str, str]], truth: Any) -> dict[str, tuple[float, float]]:
    out = {}
    for kind in KINDS:
        got = {f for f in found if f[0] == kind}
        injected = {t for t in truth.single if t[0] == kind}
        hits = got & injected
        out[kind] = (len(hits) / len(got) if got else 1.0, len(hits) / len(injected) if injected else 1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--modes", nargs="+", default=["online", "offline"], choices=["online", "offline"])
    parser.add_argument(
        "--contamination", default="0.03", help="The forest's share of outliers (a number, or auto)."
    )
    args = parser.parse_args()
    contamination = args.contamination if args.contamination == "auto" else float(args.contamination)
    print(f"{'seed':4} {'detector':8} " + " ".join(f"{k + ' P/R':>17}" for k in KINDS) + "  seconds")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            truth = generate(Path(tmp), args.runs, seed)
            start = time.perf_counter()
            robust = evaluate(Path(tmp), truth)
            took = {"robust": time.perf_counter() - start}
            results = {"robust": {k: (robust[k]["precision"], robust[k]["recall"]) for k in KINDS}}
            rows = _rows(Path(tmp))
            for mode in args.modes:
                start = time.perf_counter()
                results[mode] = _figures(_flagged(rows, mode, seed, contamination), truth)
                took[mode] = time.perf_counter() - start
        for name, figures in results.items():
            cells = " ".join(f"{figures[k][0]:8.3f}/{figures[k][1]:.3f}" for k in KINDS)
            print(f"{seed:4} {name:8} {cells}  {took[name]:7.2f}")


if __name__ == "__main__":
    main()
