"""`rayweave serve`: wiring of settings, loopback binding, the admin key and the printed URLs.

Ray and Serve are replaced by recorders here (starting a Ray per CLI test would be slow); the deployment itself
is exercised on a real Ray Serve in tests/serve/api/test_ray_serve.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cluster.ray_runtime
import serve.deployment
from cluster.ray_runtime import RayConnection
from serve.cli import build_app


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def fake_ensure_ray(settings: Any, **kwargs: Any) -> RayConnection:
        calls["ray_address"] = settings.ray_address
        return RayConnection("127.0.0.1:6379", started_here=True, dashboard_url="http://127.0.0.1:8265")

    def fake_deploy(
        settings: Any, options: Any, *, host: str, port: int, num_replicas: int, replicas_per_host: int | None
    ) -> str:
        calls.update(host=host, port=port, replicas=num_replicas, executor=options.executor, options=options)
        calls["replicas_per_host"] = replicas_per_host
        raise KeyboardInterrupt  # what Ctrl-C does while serving

    monkeypatch.setattr(cluster.ray_runtime, "ensure_ray", fake_ensure_ray)
    monkeypatch.setattr(cluster.ray_runtime, "shutdown_ray", lambda: calls.setdefault("shutdown", True))
    monkeypatch.setattr(serve.deployment, "deploy", fake_deploy)
    monkeypatch.setattr(serve.deployment, "undeploy", lambda: calls.setdefault("undeployed", True))
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    for name in ("RAYWEAVE_HOST", "RAYWEAVE_PORT", "RAYWEAVE_RAY_ADDRESS", "RAYWEAVE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    calls["home"] = tmp_path / "home"
    return calls


def test_defaults_bind_loopback_and_create_the_admin_key_once(recorded: dict[str, Any]) -> None:
    first = CliRunner().invoke(build_app(), ["serve"])
    assert recorded["host"] == "127.0.0.1" and recorded["port"] == 8000 and recorded["replicas"] == 1
    assert recorded["ray_address"] == "" and recorded["executor"] == "ray"
    assert recorded["undeployed"] and recorded["shutdown"]
    key_file = recorded["home"] / "admin.key"
    secret = key_file.read_text().strip()
    assert secret.startswith("rw_") and secret in first.stdout
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = CliRunner().invoke(build_app(), ["serve"])
    assert secret not in second.stdout and key_file.read_text().strip() == secret


def test_options_reach_the_deployment(recorded: dict[str, Any]) -> None:
    CliRunner().invoke(
        build_app(),
        ["serve", "--host", "0.0.0.0", "--port", "9001", "--address", "ray://h:10001", "--replicas", "3"],
    )
    assert (recorded["host"], recorded["port"], recorded["replicas"]) == ("0.0.0.0", 9001, 3)
    assert recorded["ray_address"] == "ray://h:10001" and recorded["replicas_per_host"] is None
    CliRunner().invoke(build_app(), ["serve", "--replicas", "3", "--replicas-per-host", "1"])
    assert (recorded["replicas"], recorded["replicas_per_host"]) == (3, 1)
    refused = CliRunner().invoke(build_app(), ["serve", "--replicas-per-host", "0"])
    assert refused.exit_code == 2 and "--replicas-per-host" in refused.output


def test_recovery_timings_reach_the_server_and_stay_above_the_heartbeat(recorded: dict[str, Any]) -> None:
    CliRunner().invoke(build_app(), ["serve"])
    defaults = recorded["options"]
    assert (defaults.recovery_stale_after_s, defaults.recovery_start_grace_s) == (60.0, 60.0)
    assert defaults.recovery_interval_s == 5.0
    args = ["--recovery-stale-after", "6", "--recovery-start-grace", "8", "--recovery-interval", "1"]
    CliRunner().invoke(build_app(), ["serve", *args])
    chosen = recorded["options"]
    assert chosen.recovery_stale_after_s == 6 and chosen.recovery_start_grace_s == 8
    assert chosen.recovery_interval_s == 1
    # A limit near the coordinator's 2 s heartbeat would resume live runs (and run their nodes twice).
    refused = CliRunner().invoke(build_app(), ["serve", "--recovery-stale-after", "1"])
    assert refused.exit_code == 2 and "--recovery-stale-after" in refused.output


def test_the_cap_on_outputs_answers_reaches_the_server(recorded: dict[str, Any]) -> None:
    from serve.config import ServeOptions

    CliRunner().invoke(build_app(), ["serve"])
    assert recorded["options"].max_output_bytes == ServeOptions().max_output_bytes == 32 * 1024 * 1024
    CliRunner().invoke(build_app(), ["serve", "--max-output-bytes", "1000"])
    assert recorded["options"].max_output_bytes == 1000
    refused = CliRunner().invoke(build_app(), ["serve", "--max-output-bytes", "-1"])
    assert refused.exit_code == 2 and "--max-output-bytes" in refused.output


def test_bad_usage_exits_2(recorded: dict[str, Any]) -> None:
    assert CliRunner().invoke(build_app(), ["serve", "--executor", "spark"]).exit_code == 2
    assert CliRunner().invoke(build_app(), ["serve", "--replicas", "0"]).exit_code == 2


def test_describe_prints_api_docs_and_dashboard() -> None:
    from serve.cli.serve_cmd import describe

    text = describe("http://127.0.0.1:8000", "http://127.0.0.1:8265")
    assert "http://127.0.0.1:8000/v1" in text and "http://127.0.0.1:8000/docs" in text
    assert "http://127.0.0.1:8265" in text
    assert "not running" in describe("http://127.0.0.1:8000", None)
    with_ray = describe("http://127.0.0.1:8000", None, ray_address="127.0.0.1:6379")
    assert "Ray:       127.0.0.1:6379" in with_ray


def test_oidc_comes_from_the_rayweave_settings(tmp_path: Path) -> None:
    import typer

    from cluster.settings import Settings
    from serve.cli.serve_cmd import oidc_config

    assert oidc_config(Settings(home=tmp_path)) is None
    config = oidc_config(
        Settings(home=tmp_path, oidc_issuer="https://id.example", oidc_audience="rayweave", oidc_jwks_url="")
    )
    assert (config.issuer, config.audience, config.jwks_url) == ("https://id.example", "rayweave", None)
    with pytest.raises(typer.BadParameter, match="RAYWEAVE_OIDC_AUDIENCE"):
        oidc_config(Settings(home=tmp_path, oidc_issuer="https://id.example"))
