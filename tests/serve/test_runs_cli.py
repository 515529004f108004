"""`rayweave runs list|show|events|cancel|resume` against a store holding durable runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.store import open_store
from serve.cli import build_app
from tests.engine.durable.flows import chain


def _run(home: Path, *args: str) -> tuple[int, str]:
    env = {"RAYWEAVE_HOME": str(home), "RAYWEAVE_DATABASE_URL": ""}
    result = CliRunner().invoke(build_app(), ["runs", *args], env=env)
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def finished_run(home: Path, tmp_path: Path) -> str:
    log = tmp_path / "log"
    log.mkdir()
    store = open_store(Settings(home=home).resolved_database_url)
    try:
        runner = DurableRunner(Settings(home=home), store=store, executor="local")
        return str(runner.run(chain(log), {"x": 1}).run_id)
    finally:
        store.close()


def test_list_and_show_a_finished_run(home: Path, finished_run: str) -> None:
    code, out = _run(home, "list", "--json")
    assert code == 0, out
    runs = json.loads(out)["runs"]
    assert [(r["id"], r["status"], r["workflow"]) for r in runs] == [
        (finished_run, "succeeded", "durable-chain")
    ]
    code, out = _run(home, "list", "--status", "running")
    assert code == 0 and out.strip() == "no runs"

    code, out = _run(home, "show", finished_run, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["status"] == "succeeded" and shown["outputs"] == {"out": 6}
    assert [(n["node"], n["attempt"], n["status"]) for n in shown["nodes"]] == [
        ("a", 1, "succeeded"),
        ("b", 1, "succeeded"),
        ("c", 1, "succeeded"),
        ("d", 1, "succeeded"),
    ]
    code, out = _run(home, "show", finished_run)
    assert code == 0 and f"run {finished_run}: succeeded" in out and "output out = 6" in out


def test_events_after_a_sequence_number(home: Path, finished_run: str) -> None:
    code, out = _run(home, "events", finished_run, "--json")
    assert code == 0, out
    events = json.loads(out)["events"]
    assert events[0]["type"] == "run.queued" and events[-1]["type"] == "run.succeeded"
    code, out = _run(home, "events", finished_run, "--after", "3", "--json")
    assert [e["seq"] for e in json.loads(out)["events"]] == [e["seq"] for e in events[3:]]
    code, out = _run(home, "events", finished_run, "--follow")
    assert code == 0 and out.strip().splitlines()[-1].endswith("run.succeeded")


def test_cancel_marks_an_active_run_and_refuses_a_finished_one(home: Path, finished_run: str) -> None:
    store = open_store(Settings(home=home).resolved_database_url)
    try:
        active = store.runs.create(
            document={"name": "w", "nodes": {}, "outputs": {}}, status="running"
        ).run.id
    finally:
        store.close()
    code, out = _run(home, "cancel", active, "--json")
    assert code == 0, out
    assert json.loads(out) == {"run_id": active, "status": "cancelled"}
    code, out = _run(home, "cancel", finished_run)
    assert code == 1 and "already succeeded" in out


def test_resume_reports_nothing_to_do_and_names_bad_requests(home: Path, finished_run: str) -> None:
    code, out = _run(home, "resume", "--json")
    assert code == 0, out
    assert json.loads(out) == {"resumed": [], "runs": {}}
    code, out = _run(home, "resume", finished_run)
    assert code == 1 and "already succeeded" in out
    code, out = _run(home, "resume", "no-such-run")
    assert code == 1 and "no-such-run" in out
    code, out = _run(home, "resume", "--force")
    assert code == 2 and "--force needs a RUN_ID" in out


@pytest.mark.usefixtures("ray_session")
def test_resume_answers_what_the_crash_lost_from_the_result_cache(home: Path, tmp_path: Path) -> None:
    from engine.durable.stored import stored_outputs
    from tests.engine.durable import flows
    from tests.engine.durable.crash import simulate_crash
    from tests.engine.durable.flows import executions

    log = tmp_path / "log"
    log.mkdir()
    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    try:
        runner = DurableRunner(settings, store=store, executor="local", cache=True)
        run_id = str(runner.run(flows.squares(log), {"x": 3}).run_id)
        simulate_crash(store, runner.results, run_id, running="s2", later=(), keep_result=False)

        code, out = _run(home, "resume", run_id, "--json")
        assert code == 0, out
        assert json.loads(out)["runs"] == {run_id: "succeeded"}
        # s2's result was lost with the crash; the installation's cache answered it without running it again.
        assert executions(log) == {"s1": 1, "s2": 1}
        assert store.node_runs.latest(run_id)["s2"].status == "cached"
        assert stored_outputs(store, runner.results, run_id) == {"out": 81}
    finally:
        store.close()
