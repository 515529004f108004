"""Every example in the README runs: its Python blocks, and each `rayweave` command line it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.ray_runtime import RayConnection
from serve.cli import build_app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def _command_lines() -> list[str]:
    lines = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("rayweave "):
                lines.append(command)
    return lines


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = _blocks("sh")[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block[:2]] == ["make demo", "make test"]


@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_readme_python_block_runs(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize("command", _command_lines())
def test_readme_command_succeeds(
    command: str, ray_session: RayConnection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(build_app(), shlex.split(command)[1:])
    assert result.exit_code == 0, f"`{command}` exited {result.exit_code}:\n{result.output}"
    assert result.output.strip(), f"`{command}` printed nothing"
