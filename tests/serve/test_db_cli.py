"""`rayweave db upgrade`, `rayweave db migrate` and `rayweave stats`, run through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.store import open_store
from engine.store.migrate import head_revision
from serve.cli import build_app
from tests.engine.store.conformance.populate import populate


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env=env)
    return result.exit_code, result.output


def test_upgrade_creates_the_schema_then_has_nothing_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'rayweave.db'}"
    code, out = _run("db", "upgrade", "--url", url, "--json")
    assert code == 0, out
    first = json.loads(out)
    assert (first["from"], first["to"], first["changed"]) == (None, head_revision(), True)
    code, out = _run("db", "upgrade", "--url", url)
    assert code == 0 and "nothing to do" in out
    store = open_store(url, upgrade=False)
    assert store.workflows.list() == []
    store.close()


def test_upgrade_defaults_to_the_sqlite_file_under_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out = _run("db", "upgrade", "--json", env={"RAYWEAVE_HOME": str(home), "RAYWEAVE_DATABASE_URL": ""})
    assert code == 0, out
    assert (home / "rayweave.db").exists()


def test_bad_urls_are_usage_errors(tmp_path: Path) -> None:
    code, out = _run("db", "upgrade", "--url", "oracle://u@h/db")
    assert code == 2 and "sqlite" in out


def test_migrate_copies_and_verifies_and_can_be_rerun(tmp_path: Path) -> None:
    source_url, target_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    source = open_store(source_url)
    populate(source)
    source.close()
    code, out = _run("db", "migrate", "--url", source_url, "--to", target_url, "--json")
    assert code == 0, out
    tables = json.loads(out)["tables"]
    assert tables["workflow_versions"]["copied"] == 3 and len(tables["runs"]["hash"]) == 64
    code, out = _run("db", "migrate", "--url", source_url, "--to", target_url)
    assert code == 0 and "events: 10 rows, 0 copied, hash ok" in out


def test_migrate_copies_to_redis_and_back(tmp_path: Path) -> None:
    from tests.engine.store.redis_support import redis_store

    source_url, back_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    source = open_store(source_url)
    populate(source)
    source.close()
    with redis_store() as middle:
        code, out = _run("db", "migrate", "--url", source_url, "--to", middle.connect_url, "--json")
        assert code == 0, out
        there = json.loads(out)["tables"]
        assert there["events"]["copied"] == 10 and there["audit_entries"]["copied"] == 1
        code, out = _run("db", "migrate", "--url", middle.connect_url, "--to", back_url, "--json")
        assert code == 0, out
        back = json.loads(out)["tables"]
        assert {name: t["hash"] for name, t in back.items()} == {name: t["hash"] for name, t in there.items()}


def test_stats_reports_history_as_json_and_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    populate(store)
    store.close()
    out_dir = tmp_path / "analytics"
    code, out = _run("stats", "--url", url, "--out", str(out_dir), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["export"]["node_runs"] == 10
    assert report["retry_counts"][0] == {
        "node_type": "t/a@1",
        "executions": 5,
        "retried_executions": 5,
        "retries": 5,
        "max_attempts": 2,
    }
    assert list(out_dir.glob("node_runs/day=*/*.parquet"))
    code, out = _run("stats", "--url", url, "--out", str(out_dir))
    assert code == 0 and "slowest node types" in out and "t/a@1" in out


@pytest.mark.parametrize(
    ("args", "message"), [(["--bucket", "year"], "--bucket"), (["--since", "soon"], "--since")]
)
def test_stats_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    code, out = _run("stats", "--url", f"sqlite:///{tmp_path / 'a.db'}", *args)
    assert code == 2 and message in out


def test_export_and_import_single_workflows_as_json_and_yaml(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    populate(store)
    etl = store.workflows.list(name="etl")[0].id
    store.close()
    code, out = _run("export", etl, "--url", url, "--format", "yaml", "--version", "1")
    assert code == 0 and "name: etl" in out
    (tmp_path / "etl.yaml").write_text(out)
    target = f"sqlite:///{tmp_path / 'b.db'}"
    code, out = _run("import", str(tmp_path / "etl.yaml"), "--url", target, "--json")
    assert code == 0, out
    imported = json.loads(out)
    assert imported["version"] == 1
    code, out = _run("export", imported["workflow_id"], "--url", target, "--out", str(tmp_path / "etl.json"))
    assert code == 0
    assert json.loads((tmp_path / "etl.json").read_text())["nodes"] == {"a": {"type": "t/a@1"}}
    (tmp_path / "bad.json").write_text(
        json.dumps({"format": "rayweave.workflow/1", "name": "x", "nodez": {}})
    )
    code, out = _run("import", str(tmp_path / "bad.json"), "--url", target)
    assert code == 1 and "nodez" in out


def test_export_all_and_import_round_trip(tmp_path: Path) -> None:
    url, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    store = open_store(url)
    populate(store)
    store.close()
    archive, again = tmp_path / "all.json", tmp_path / "again.json"
    assert _run("export", "--all", "--runs", "--url", url, "--out", str(archive))[0] == 0
    code, out = _run("import", str(archive), "--url", target, "--json")
    assert code == 0 and json.loads(out)["added"]["runs"] == 6
    assert _run("export", "--all", "--runs", "--url", target, "--out", str(again))[0] == 0
    assert again.read_text() == archive.read_text()
    assert _run("export", "--url", url)[0] == 2


def test_unusable_databases_exit_with_a_message(tmp_path: Path) -> None:
    code, out = _run("stats", "--url", "oracle://u@h/db")
    assert code == 2 and "database URL" in out
    code, out = _run(
        "db", "migrate", "--url", f"sqlite:///{tmp_path / 'a.db'}", "--to", "postgresql://x@127.0.0.1:1/db"
    )
    assert code == 1 and "cannot open the database" in out


def test_a_database_that_does_not_exist_is_named_and_nothing_is_blamed_on_a_migration(tmp_path: Path) -> None:
    missing = "postgresql://postgres@127.0.0.1:5432/rayweave_test_never_created"
    code, out = _run("db", "migrate", "--url", f"sqlite:///{tmp_path / 'a.db'}", "--to", missing)
    assert code == 1 and "cannot connect to the database" in out and "rayweave_test_never_created" in out
    assert "check that the database exists" in out and "restore the backup" not in out
