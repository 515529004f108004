"""Every entry point starts a run on the one run path: compiled once, inputs resolved once, Ray ensured once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cluster.ray_runtime
import engine.compile.pipeline
import engine.durable.runner
import engine.execution.api
import engine.execution.start
from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from serve.cli import build_app
from tests.serve.api.conftest import Api, wait_for_status

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
DOC = json.loads((EXAMPLES / "fan_out_join.json").read_text())


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How often this process compiles a workflow (nested sub-workflows not counted), resolves inputs,
    ensures Ray and starts a run on the run path."""
    counted: Counter[str] = Counter()
    depth = [0]
    compile_ = engine.compile.pipeline._compile

    def counting_compile(*args: Any, **kwargs: Any) -> Any:
        if depth[0] == 0:
            counted["compile"] += 1
        depth[0] += 1
        try:
            return compile_(*args, **kwargs)
        finally:
            depth[0] -= 1

    def count(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counting(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return function(*args, **kwargs)

        return counting

    monkeypatch.setattr(engine.compile.pipeline, "_compile", counting_compile)
    monkeypatch.setattr(
        engine.execution.api, "resolve_inputs", count("resolve", engine.execution.api.resolve_inputs)
    )
    monkeypatch.setattr(
        cluster.ray_runtime, "ensure_ray", count("ensure_ray", cluster.ray_runtime.ensure_ray)
    )
    start_run = count("start_run", engine.execution.start.start_run)
    monkeypatch.setattr(engine.execution.start, "start_run", start_run)
    monkeypatch.setattr(engine.durable.runner, "start_run", start_run)
    yield counted


def test_post_runs_compiles_once_and_resolves_the_inputs_once(api: Api, calls: Counter[str]) -> None:
    with api.client() as c:
        response = c.post("/v1/runs", json={"workflow": DOC, "inputs": {"a": 3}})
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        wait_for_status(c, run_id, "succeeded")
        outputs = c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"]
    assert outputs == {"sum_of_squares": 9 + 4 + 9 + 16}
    assert calls["compile"] == 1 and calls["resolve"] == 1 and calls["start_run"] == 1, calls


def test_post_runs_of_a_stored_workflow_compiles_once(api: Api, calls: Counter[str]) -> None:
    with api.client() as c:
        created = c.post("/v1/workflows", json={"workflow": DOC})
        assert created.status_code == 201, created.text
        calls.clear()  # storing a workflow validates it: only the run request counts here
        response = c.post("/v1/runs", json={"workflow_id": created.json()["workflow_id"], "inputs": {"a": 2}})
        assert response.status_code == 202, response.text
        wait_for_status(c, response.json()["id"], "succeeded")
    assert calls["compile"] == 1 and calls["resolve"] == 1, calls


def test_post_runs_with_bad_inputs_is_a_422_after_one_compile(api: Api, calls: Counter[str]) -> None:
    with api.client() as c:
        response = c.post("/v1/runs", json={"workflow": DOC, "inputs": {"a": "five"}})
    assert response.status_code == 422, response.text
    assert "'a'" in response.json()["detail"]
    assert calls["compile"] == 1 and calls["start_run"] == 0, calls


def test_rayweave_run_local_compiles_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Counter[str]
) -> None:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        build_app(), ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=5", "--json", "--local"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"sum_of_squares": 25 + 4 + 9 + 16}
    assert calls["compile"] == 1 and calls["resolve"] == 1 and calls["start_run"] == 1, calls
    assert calls["ensure_ray"] == 0, calls


def test_rayweave_run_on_ray_compiles_once_and_ensures_ray_once(
    ray_session: RayConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Counter[str]
) -> None:
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        build_app(), ["run", str(EXAMPLES / "fan_out_join.json"), "--input", "a=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"sum_of_squares": 1 + 4 + 9 + 16}
    assert calls["compile"] == 1 and calls["resolve"] == 1 and calls["start_run"] == 1, calls
    assert calls["ensure_ray"] == 1, calls


def test_engine_run_compiles_once_and_starts_on_the_run_path(settings: Settings, calls: Counter[str]) -> None:
    result = engine.execution.api.run(DOC, {"a": 4}, executor="local", settings=settings)
    assert result.outputs == {"sum_of_squares": 16 + 4 + 9 + 16}
    assert calls["compile"] == 1 and calls["resolve"] == 1 and calls["start_run"] == 1, calls
