"""The SDK client reads what it is not given (server URL, API key, timeout) from `RAYWEAVE_*` variables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from serve.client import AsyncClient, Client


def test_a_client_given_nothing_takes_the_server_key_and_timeout_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAYWEAVE_SERVER", "http://rayweave.internal:9000/")
    monkeypatch.setenv("RAYWEAVE_API_KEY", "rw_env_key")
    monkeypatch.setenv("RAYWEAVE_CLIENT_TIMEOUT_S", "7.5")
    with Client() as client:
        assert client.url == "http://rayweave.internal:9000"
        assert client.auth_headers == {"Authorization": "Bearer rw_env_key"}
        assert client._http.timeout.read == 7.5
    with Client("http://127.0.0.1:1", "rw_arg", timeout=2.0) as client:  # arguments win
        assert client.url == "http://127.0.0.1:1" and client.auth_headers["Authorization"] == "Bearer rw_arg"
        assert client._http.timeout.read == 2.0


def test_the_async_client_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RAYWEAVE_API_KEY", raising=False)
    monkeypatch.delenv("RAYWEAVE_CLIENT_TIMEOUT_S", raising=False)
    monkeypatch.setenv("RAYWEAVE_SERVER", "http://rayweave.internal:9000")
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path))
    (tmp_path / "admin.key").write_text("rw_file_key\n")
    client = AsyncClient()
    try:
        assert client.url == "http://rayweave.internal:9000"
        assert client.auth_headers == {"Authorization": "Bearer rw_file_key"}
        assert client._http.timeout.read == 30.0
    finally:
        asyncio.run(client.aclose())
