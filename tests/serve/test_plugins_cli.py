"""`rayweave plugins ...` through the real Typer app: scaffold, publish, search, install, list, remove, docs."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serve.cli import build_app


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_app(), list(args), env={"RAYWEAVE_HOME": str(home), "RAYWEAVE_PLUGIN_INDEX": ""}
    )
    return result.exit_code, result.output


def test_a_new_plugin_passes_its_own_tests_out_of_the_box(tmp_path: Path) -> None:
    code, out = _run(tmp_path / "home", "plugins", "new", "hello-world", "--dir", str(tmp_path), "--json")
    assert code == 0, out
    root = Path(json.loads(out)["path"])
    assert (root / "rayweave-plugin.toml").is_file() and (root / "docs" / "hello-world.md").is_file()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    code, out = _run(tmp_path / "home", "plugins", "new", "hello-world", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in out
    code, out = _run(tmp_path / "home", "plugins", "new", "Bad Name", "--dir", str(tmp_path))
    assert code == 2 and "field 'name'" in out


def test_publish_search_install_list_and_remove_with_a_directory_index(tmp_path: Path) -> None:
    home, index = tmp_path / "home", tmp_path / "index"
    for name in ("alpha", "beta"):
        assert _run(home, "plugins", "new", name, "--dir", str(tmp_path / "src"))[0] == 0
        code, out = _run(
            home, "plugins", "publish", str(tmp_path / "src" / name), "--index", str(index), "--json"
        )
        assert code == 0, out
        assert json.loads(out)["archive"] == f"{name}-0.1.0.tar.gz"
    code, out = _run(home, "plugins", "search", "alp", "--index", str(index), "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)["plugins"]] == ["alpha"]
    code, out = _run(home, "plugins", "install", "alpha==0.1.0", "--index", str(index), "--json")
    assert code == 0, out
    assert json.loads(out) == {"installed": ["alpha@0.1.0"]}
    code, out = _run(home, "plugins", "list", "--json")
    listed = json.loads(out)["plugins"]
    assert [(p["name"], p["version"], p["origin"]) for p in listed] == [("alpha", "0.1.0", "installed")]
    code, out = _run(home, "plugins", "install", "alpha==9.0.0", "--index", str(index))
    assert code == 1 and "alpha ==9.0.0 is not in the index" in out
    code, out = _run(home, "plugins", "remove", "alpha", "--json")
    assert code == 0 and json.loads(out) == {"removed": ["alpha@0.1.0"]}
    code, out = _run(home, "plugins", "remove", "alpha")
    assert code == 1 and "not installed" in out
    code, out = _run(home, "plugins", "install", "nothing-here")
    assert code == 2 and "--index" in out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_index(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_install_from_an_http_index_brings_plugin_dependencies_and_verifies_digests(
    tmp_path: Path, http_index: tuple[Path, str]
) -> None:
    root, url = http_index
    home = tmp_path / "home"
    for name in ("base", "app"):
        _run(home, "plugins", "new", name, "--dir", str(tmp_path / "src"))
    manifest = tmp_path / "src" / "app" / "rayweave-plugin.toml"
    manifest.write_text(
        manifest.read_text().replace("[dependencies]\n", '[dependencies]\nbase = ">=0.1,<1"\n')
    )
    for name in ("base", "app"):
        assert _run(home, "plugins", "publish", str(tmp_path / "src" / name), "--index", str(root))[0] == 0
    code, out = _run(home, "plugins", "install", "app", "--index", url, "--json")
    assert code == 0, out
    assert json.loads(out) == {"installed": ["base@0.1.0", "app@0.1.0"]}
    code, out = _run(home, "plugins", "remove", "base")
    assert code == 1 and "app@0.1.0" in out
    (root / "base-0.1.0.tar.gz").write_bytes(b"tampered")
    _run(home, "plugins", "remove", "app")
    _run(home, "plugins", "remove", "base")
    code, out = _run(home, "plugins", "install", "base", "--index", url)
    assert code == 1 and "sha256" in out and "do not install it" in out


@pytest.mark.ray
@pytest.mark.slow
def test_docs_documents_every_node_read_inside_the_plugin_environment(
    ray_session: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    _run(home, "plugins", "new", "greeter", "--dir", str(tmp_path))
    code, out = _run(home, "plugins", "docs", "greeter", "--path", str(tmp_path / "greeter"))
    assert code == 0, out
    assert out.startswith("# Plugin `greeter` 0.1.0")
    assert "`greeter/greet@0`" in out and "who to greet" in out and "| `name` |" in out
    assert "greeter.nodes" not in sys.modules


def test_list_shows_plugins_found_in_plugin_dirs_and_reports_broken_ones(tmp_path: Path) -> None:
    dirs = tmp_path / "plugin-dirs"
    _run(tmp_path / "home", "plugins", "new", "found-here", "--dir", str(dirs))
    _run(tmp_path / "home", "plugins", "new", "broken", "--dir", str(dirs))
    (dirs / "broken" / "rayweave-plugin.toml").write_text(
        'name = "broken"\nversion = "1"\nmodules = ["broken"]\n'
    )
    result = CliRunner().invoke(
        build_app(),
        ["plugins", "list", "--json"],
        env={"RAYWEAVE_HOME": str(tmp_path / "home"), "RAYWEAVE_PLUGIN_DIRS": json.dumps([str(dirs)])},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(p["name"], p["origin"]) for p in data["plugins"]] == [("found-here", "directory")]
    assert len(data["problems"]) == 1 and "field 'version'" in data["problems"][0]
