"""Anomaly detection on the synthetic history of bench/anomaly_bench.py (durations, output sizes, memory, failure
bursts): precision and recall per kind >= 0.9."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.anomaly_bench import KINDS, evaluate, generate


@pytest.mark.parametrize("seed", [1, 3])
def test_injected_anomalies_are_found_and_nothing_else(tmp_path: Path, seed: int) -> None:
    truth = generate(tmp_path, runs=400, seed=seed)
    figures = evaluate(tmp_path, truth)
    for kind in KINDS:
        f = figures[kind]
        assert f["injected"] >= 5, (kind, f)  # the history does exercise the kind
        assert f["precision"] >= 0.9 and f["recall"] >= 0.9, (kind, f)
    # A burst of failures is reported at its third failure at the latest.
    assert figures["failure_burst"]["delay"] <= 2.0
