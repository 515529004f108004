"""`rayweave plugins install ml`: a first-party plugin by name, from the directories shipped with rayweave."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nodes.plugins.firstparty import firstparty_dir, firstparty_names, firstparty_path
from serve.cli import build_app


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_app(), list(args), env={"RAYWEAVE_HOME": str(home), "RAYWEAVE_PLUGIN_INDEX": ""}
    )
    return result.exit_code, result.output


def test_first_party_names_resolve_to_their_directories() -> None:
    assert {"ml", "nlp"} <= set(firstparty_names())
    assert firstparty_path("ml") == firstparty_dir() / "ml"
    assert firstparty_path("ml==1.0.0") == firstparty_dir() / "ml"
    assert firstparty_path("ml>=2") is None  # not the shipped version: left to the index
    assert firstparty_path("acme-tools") is None
    assert firstparty_path("not a requirement") is None


def test_install_ml_by_name_without_an_index(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out = _run(home, "plugins", "install", "ml", "--json")
    assert code == 0, out
    assert json.loads(out) == {"installed": ["ml@1.0.0"]}
    installed = home / "plugins" / "ml" / "1.0.0"
    assert (installed / "rayweave-plugin.toml").is_file()
    assert (installed / "rayweave_ml" / "nodes.py").is_file()
    code, out = _run(home, "plugins", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [(p["name"], p["version"], p["origin"]) for p in listed["plugins"]] == [
        ("ml", "1.0.0", "installed")
    ]
    code, out = _run(home, "plugins", "install", "ml")
    assert code == 1 and "already installed" in out, out
    code, out = _run(home, "plugins", "install", "ml", "--force")
    assert code == 0 and out.strip() == "installed ml@1.0.0"
    # A version the shipped one does not satisfy goes to the index, which is not configured here.
    code, out = _run(home, "plugins", "install", "ml>=2")
    assert code == 2 and "give --index" in out
