"""Anomaly detection on the synthetic history of bench/anomaly_bench.py (durations, output sizes, memory, failure
bursts): precision and recall per kind >= 0.9."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.anomaly_bench import KINDS, evaluate, generate
from engine.analytics.anomalies import Execution, KeyHistory


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_injected_anomalies_are_found_and_nothing_else(tmp_path: Path, seed: int) -> None:
    truth = generate(tmp_path, runs=400, seed=seed)
    figures = evaluate(tmp_path, truth)
    for kind in KINDS:
        f = figures[kind]
        assert f["injected"] >= 5, (kind, f)  # the history does exercise the kind
        assert f["precision"] >= 0.9 and f["recall"] >= 0.9, (kind, f)
    # A burst of failures is reported at its third failure at the latest.
    assert figures["failure_burst"]["delay"] <= 2.0


def _bursts(pattern: str) -> list[int]:
    """The positions in `pattern` (F: failed, .: succeeded) where one key's history reports a failure burst."""
    history = KeyHistory()
    found = []
    for i, c in enumerate(pattern):
        status = "failed" if c == "F" else "succeeded"
        execution = Execution(
            "wf", "n", "t/n@1", f"r{i}", None, False, status, None if c == "F" else 1.0, None
        )
        if any(a.kind == "failure_burst" for a in history.observe(execution)):
            found.append(i)
    return found


def test_a_burst_is_found_right_after_earlier_bursts() -> None:
    # Seed 2 of the bench missed such a burst: each earlier burst counted five failures in the key's rate.
    quiet = "." * 20
    pattern = quiet + "FFFFF" + "." * 12 + "FFFFF" + "." * 8 + "FFFFF"
    assert _bursts(pattern) == [22, 39, 52]


def test_a_node_that_keeps_failing_is_no_burst() -> None:
    # Streaks of three every fourth execution: a node that fails often, reported at most while it looks rare.
    assert len(_bursts("." * 20 + "FFF." * 40)) <= 2
