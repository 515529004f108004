"""The run's access policy: made from the settings by the process that starts the run, applied on the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.execution.access import policy_for
from engine.execution.ray.executor import RayExecutor
from nodes.states import NodeStatus, RunStatus


def _reader(path: str) -> dict[str, object]:
    return {
        "format": "rayweave.workflow/1",
        "name": "read",
        "nodes": {
            "load": {"type": "builtin/read_csv@1", "in": {"path": {"value": path}}},
            "mean": {
                "type": "builtin/column_mean@1",
                "in": {"table": "load.table"},
                "params": {"column": "x"},
            },
        },
        "outputs": {"mean": "mean.value"},
    }


def test_the_default_policy_has_one_root_in_the_home_created_on_demand(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    policy = policy_for(settings)
    root = (tmp_path / "home" / "data").resolve()
    assert policy.data_roots == (str(root),) and root.is_dir()
    for secret in ("", "admin.key", "rayweave.db", "rayweave.db-wal", "cache", "results", "plugins"):
        assert str((tmp_path / "home" / secret).resolve()) in policy.protected
    assert {"/proc", "/sys", "/dev"} <= set(policy.protected)
    assert policy.http_allow == ()


def test_configured_locations_are_protected_wherever_they_are(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        data_roots=[tmp_path],
        cache_dir=tmp_path / "cache",
        results_uri=str(tmp_path / "results"),
        plugin_dirs=[tmp_path / "plugins"],
        database_url=f"sqlite:///{tmp_path / 'db' / 'x.db'}",
        http_allow=["10.0.0.0/8", "api.internal"],
    )
    policy = policy_for(settings)
    assert policy.data_roots == (str(tmp_path.resolve()),)
    for place in ("cache", "results", "plugins", "db/x.db", "db/x.db-journal"):
        assert str((tmp_path / place).resolve()) in policy.protected
    assert policy.http_allow == ("10.0.0.0/8", "api.internal")
    assert not (tmp_path / "home" / "data").exists()  # only the default root is created


def test_settings_refuse_system_roots_and_bad_allow_entries() -> None:
    with pytest.raises(ValueError, match="system folder"):
        Settings(data_roots=["/proc/self"])
    with pytest.raises(ValueError, match="not a host name"):
        Settings(http_allow=["http://10.0.0.1/"])


def test_settings_read_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYWEAVE_DATA_ROOTS", "/srv/a, /srv/b")
    monkeypatch.setenv("RAYWEAVE_HTTP_ALLOW", '["fd00::/8", "localhost"]')
    settings = Settings()
    assert settings.data_roots == [Path("/srv/a"), Path("/srv/b")]
    assert settings.http_allow == ["fd00::/8", "localhost"]


def test_in_process_runs_get_the_policy_of_their_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    inside = policy_for(settings).data_roots[0] + "/points.csv"
    Path(inside).write_text("x\n1\n3\n")
    assert engine.run(_reader(inside), settings=settings, executor="local").outputs == {"mean": 2.0}
    (tmp_path / "outside.csv").write_text("x\n5\n")
    refused = engine.run(_reader(str(tmp_path / "outside.csv")), settings=settings, executor="local")
    assert refused.status is RunStatus.FAILED
    error = refused.nodes["load"].error
    assert error is not None and error.type == "AccessDeniedError" and "RAYWEAVE_DATA_ROOTS" in error.message


def test_the_policy_reaches_the_ray_worker(ray_session: RayConnection, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", data_roots=[tmp_path / "data"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "points.csv").write_text("x\n2\n4\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "admin.key").write_text("x\n1\n")
    executor = RayExecutor()
    good = engine.run(_reader(str(tmp_path / "data" / "points.csv")), settings=settings, executor=executor)
    assert good.status is RunStatus.SUCCEEDED and good.outputs == {"mean": 3.0}
    bad = engine.run(_reader(str(tmp_path / "home" / "admin.key")), settings=settings, executor=executor)
    assert bad.status is RunStatus.FAILED and bad.nodes["load"].status is NodeStatus.FAILED
    error = bad.nodes["load"].error
    assert error is not None and error.type == "AccessDeniedError"
    assert "outside the data roots" in error.message and str(tmp_path / "data") in error.message


def test_refusals_of_the_policy_never_open_the_circuit_breaker(tmp_path: Path) -> None:
    # http_request has a circuit breaker (5 failures open it): one caller's forbidden requests must not open
    # it for everyone, so the tenth refusal is still a refusal, not "circuit open".
    from engine.execution.inprocess import InProcessExecutor

    fetch = {
        "format": "rayweave.workflow/1",
        "name": "fetch",
        "nodes": {"get": {"type": "builtin/http_request@1", "in": {"url": {"value": "http://127.0.0.1:9/"}}}},
        "outputs": {"status": "get.status"},
    }
    executor = InProcessExecutor()  # one executor, one set of breakers, as a server's runner keeps
    settings = Settings(home=tmp_path / "home")
    for _ in range(10):
        result = engine.run(fetch, executor=executor, settings=settings, cache=False)
        assert result.status is RunStatus.FAILED
        error = result.nodes["get"].error
        assert error is not None and error.type == "AccessDeniedError", error
    assert executor.breakers.state("builtin/http_request@1") == "closed"
