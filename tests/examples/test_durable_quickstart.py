"""`python -m examples.durable_quickstart`: the quickstart runs durably on Ray and is recorded in the SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection


def test_the_durable_quickstart_runs_and_is_recorded(
    ray_session: RayConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cluster.settings import Settings
    from engine.store import open_store
    from examples.durable_quickstart import main

    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    assert main() == 0
    printed = capsys.readouterr().out
    assert "report = {'total': 80, 'largest': 20}" in printed
    store = open_store(Settings().resolved_database_url)
    runs = store.runs.list().items
    assert [run.status for run in runs] == ["succeeded"]
