"""`make demo` works: the quickstart runs durably on Ray and is recorded in the SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection


def test_demo_runs_the_quickstart_and_records_it(
    ray_session: RayConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cluster.settings import Settings
    from engine.store import open_store
    from examples.demo import main

    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    assert main() == 0
    printed = capsys.readouterr().out
    assert "report = {'total': 80, 'largest': 20}" in printed
    store = open_store(Settings().resolved_database_url)
    runs = store.runs.list().items
    assert [run.status for run in runs] == ["succeeded"]
