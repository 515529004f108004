"""Retention of a real installation: `rayweave db prune` and the recovery sweep's prune delete old finished runs
with their stored results (on disk), and never a recent or an active one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.durable.recovery import RecoverySweeper
from engine.store import NotFoundError, open_store
from nodes.ids import RunId
from serve.cli import build_app
from tests.engine.durable.flows import chain
from tests.engine.store.sql_support import backdate_run


def _backdate(settings: Settings, run_id: RunId, days: float) -> None:
    """Make a finished run look `days` old (created and finished then)."""
    store = open_store(settings.resolved_database_url)
    try:
        backdate_run(store, run_id, datetime.now(UTC) - timedelta(days=days))
    finally:
        store.close()


def _gone(settings: Settings, run_id: RunId) -> bool:
    store = open_store(settings.resolved_database_url)
    try:
        store.runs.get(run_id)
    except NotFoundError:
        return True
    finally:
        store.close()
    return False


def test_db_prune_deletes_old_runs_and_their_results(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    runner = DurableRunner(settings, executor="local")
    old = runner.run(chain(tmp_path / "log"), {"x": 1}).run_id
    recent = runner.run(chain(tmp_path / "log"), {"x": 2}).run_id
    runner.store.close()
    _backdate(settings, old, 40)
    results = tmp_path / "home" / "results"
    assert (results / old).is_dir() and (results / recent).is_dir()
    env = {"RAYWEAVE_HOME": str(settings.home), "RAYWEAVE_DATABASE_URL": ""}

    def prune(*args: str) -> tuple[int, str]:
        outcome = CliRunner().invoke(build_app(), ["db", "prune", *args], env=env)
        return outcome.exit_code, outcome.output

    code, out = prune()
    assert code == 2 and "--older-than DAYS, or set RAYWEAVE_RETENTION_DAYS" in out
    code, out = prune("--older-than", "-3")
    assert code == 2 and "positive number of days" in out
    code, out = prune("--older-than", "30", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["run_ids"] == [old] and (results / old).is_dir()
    code, out = prune("--older-than", "30")
    assert code == 0 and out.startswith("deleted 1 runs finished before"), out
    assert _gone(settings, old) and not (results / old).exists()
    assert not _gone(settings, recent) and (results / recent).is_dir()
    env["RAYWEAVE_RETENTION_DAYS"] = "0.5"  # the setting is the default period
    code, out = prune("--json")
    assert code == 0 and json.loads(out)["runs"] == 0


def test_the_recovery_sweep_prunes_once_per_interval(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", retention_days=30)
    runner = DurableRunner(settings, executor="local")
    try:
        first = runner.run(chain(tmp_path / "log"), {"x": 1}).run_id
        second = runner.run(chain(tmp_path / "log"), {"x": 2}).run_id
        _backdate(settings, first, 31)
        sweeper = RecoverySweeper(runner, retention_days=settings.retention_days, prune_interval_s=600)
        assert sweeper.prune(now=1000.0) == 1 and _gone(settings, first)
        _backdate(settings, second, 31)
        assert sweeper.prune(now=1500.0) == 0  # within the interval: not yet
        assert sweeper.prune(now=1600.0) == 1 and _gone(settings, second)
        assert RecoverySweeper(runner).prune() == 0  # no retention period: never
    finally:
        runner.store.close()
