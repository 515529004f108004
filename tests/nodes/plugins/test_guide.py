"""docs/guides/writing-plugins.md is true to the code: its console walk-through runs command by command (the
output lines it shows appear), its manifest example is valid, and its Python examples run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nodes.plugins.manifest import parse_manifest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "writing-plugins.md"
_CONSOLE = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_TOML = re.compile(r"^```toml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _steps(text: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for block in _CONSOLE.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif line.strip():
                steps[-1][1].append(line)
    return steps


def _shown_in(expected: str, output: str) -> bool:
    # "..." in the guide stands for a value that changes (a digest); whitespace is not significant.
    pattern = r"\s+".join(".*".join(re.escape(p) for p in word.split("...")) for word in expected.split())
    return re.search(pattern, " ".join(output.split())) is not None


def _run(command: str, cwd: Path, home: Path) -> tuple[int, str]:
    if command.startswith("rayweave "):
        from serve.cli import build_app

        previous = Path.cwd()
        os.chdir(cwd)
        try:
            env = {"RAYWEAVE_HOME": str(home), "RAYWEAVE_PLUGIN_INDEX": ""}
            result = CliRunner().invoke(build_app(), command.split()[1:], env=env)
        finally:
            os.chdir(previous)
        return result.exit_code, result.output
    if command.startswith("python "):
        done = subprocess.run(
            [sys.executable, *command.split()[1:], "-p", "no:cacheprovider"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout + done.stderr
    raise AssertionError(f"the guide runs a command this test does not know: {command}")


def test_the_guide_documents_every_plugins_command() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for command in ("list", "install", "remove", "search", "publish", "docs", "new"):
        assert f"rayweave plugins {command}" in text, command


def test_the_manifest_example_is_a_valid_manifest() -> None:
    [manifest] = [b for b in _TOML.findall(GUIDE.read_text(encoding="utf-8")) if "modules =" in b]
    parsed = parse_manifest(tomllib.loads(manifest), GUIDE)
    assert parsed.ref == "acme-tools@1.2.0" and parsed.dependencies == {"acme-base": ">=1,<2"}


@pytest.mark.ray
@pytest.mark.slow
def test_the_walkthrough_runs_as_written(
    ray_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    steps = _steps(text)
    assert len(steps) >= 10
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    for command, expected in steps:
        if command.startswith("cd "):
            cwd = (cwd / command[3:]).resolve()
            continue
        code, output = _run(command, cwd, home)
        assert code == 0, f"$ {command}\n{output}"
        for line in expected:
            assert _shown_in(line, output), (
                f"$ {command}: the guide shows {line!r}, the output was:\n{output}"
            )
    plugin_dir = tmp_path / "work" / "acme-tools"
    assert (plugin_dir / "docs" / "acme-tools.md").read_text().startswith("# Plugin `acme-tools` 0.1.0")
    # The Python examples, in the scaffolded plugin's directory (as its author would run them).
    monkeypatch.chdir(plugin_dir)
    monkeypatch.syspath_prepend(str(plugin_dir))
    namespace: dict[str, Any] = {}
    for block in _PYTHON.findall(text):
        exec(compile(block, str(GUIDE), "exec"), namespace)
    namespace["test_greet_greets_by_name"]()
    namespace["test_greet_in_its_environment"](ray_session)
    catalog = namespace["plugin_catalog"](home)
    assert "builtin/to_string@1" in catalog
    # The example imported the plugin in-process (as an author's own tests do); leave no trace for other tests.
    for name in [m for m in sys.modules if m == "acme_tools" or m.startswith("acme_tools.")]:
        sys.modules.pop(name)
