"""`make demo` works: the ML pipeline trains a grid, tracks it in MLflow, registers the best model, serves it on
Ray Serve and prints its predictions; the run is recorded in the SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_the_demo_trains_registers_serves_and_predicts(
    ray_session: RayConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ray import serve

    from cluster.settings import Settings
    from engine.store import open_store
    from examples.demo import GRID, main

    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "240")  # one line per message in the captured output
    try:
        assert main() == 0
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
    printed = capsys.readouterr().out
    assert f"{len(GRID)} of {len(GRID)} models trained and evaluated" in printed
    assert "registered as models:/wine-classifier/1" in printed
    predictions = re.search(
        r"predictions for wine rows 0, 70, 140 \(true classes 0, 1, 2\): \[(.*?)\]", printed
    )
    assert predictions is not None, printed
    assert [int(float(p)) for p in predictions.group(1).split(",")] == [0, 1, 2]
    assert "mlflow ui --backend-store-uri sqlite:///" in printed
    with open_store(Settings().resolved_database_url) as store:
        runs = store.runs.list().items
    assert [run.status for run in runs] == ["succeeded"]
