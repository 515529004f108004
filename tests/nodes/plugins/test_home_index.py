"""Archives, the plugin home (install/remove with records) and plugin indexes on disk and over HTTP."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from nodes.plugins import (
    DigestMismatchError,
    MissingDependencyError,
    PluginIndexError,
    PluginInstallError,
    PluginNotFoundError,
)
from nodes.plugins.archive import build_archive, extract_archive, sha256_of
from nodes.plugins.home import PluginHome
from nodes.plugins.index import PluginIndex, parse_requirement, publish
from tests.nodes.plugins.fixtures import write_plugin

CODE = """
from nodes import node

@node
def score(x: float) -> float:
    return x
"""


def test_archives_are_reproducible_and_round_trip(tmp_path: Path) -> None:
    src = write_plugin(tmp_path / "src", "acme", "1.0.0", CODE)
    (src / "acme" / "__pycache__").mkdir()
    (src / "acme" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    first = build_archive(src, tmp_path / "a")
    second = build_archive(src, tmp_path / "b")
    assert first.name == "acme-1.0.0.tar.gz"
    assert sha256_of(first) == sha256_of(second)
    root = extract_archive(first, tmp_path / "out")
    assert (root / "rayweave-plugin.toml").is_file() and (root / "acme" / "nodes.py").read_text() == (
        src / "acme" / "nodes.py"
    ).read_text()
    assert not (root / "acme" / "__pycache__").exists()


def test_install_list_and_remove_two_versions_side_by_side(tmp_path: Path) -> None:
    home = PluginHome(tmp_path / "home")
    v1 = write_plugin(tmp_path / "src", "acme", "1.0.0", CODE)
    v2 = write_plugin(tmp_path / "src", "acme", "2.0.0", CODE)
    home.install(v1)
    home.install(build_archive(v2, tmp_path / "dist"))
    assert [p.ref for p in home.installed()] == ["acme@1.0.0", "acme@2.0.0"]
    assert home.get("acme").version == "2.0.0" and home.get("acme", "<2").version == "1.0.0"
    assert (tmp_path / "home" / "plugins" / "acme" / "1.0.0" / "acme" / "nodes.py").is_file()
    records = json.loads((tmp_path / "home" / "plugins" / "installed.json").read_text())
    assert sorted(records["plugins"]) == ["acme@1.0.0", "acme@2.0.0"]
    with pytest.raises(PluginInstallError, match=r"already installed.*--force"):
        home.install(v1)
    assert home.remove("acme", "1.0.0") == ["acme@1.0.0"]
    assert [p.ref for p in home.installed()] == ["acme@2.0.0"]
    with pytest.raises(PluginNotFoundError, match=r"acme@1.0.0 is not installed \(installed: acme@2.0.0\)"):
        home.remove("acme", "1.0.0")


def test_install_checks_dependencies_and_remove_protects_dependents(tmp_path: Path) -> None:
    home = PluginHome(tmp_path / "home")
    app = write_plugin(tmp_path / "src", "app", "1.0.0", CODE, dependencies={"base": ">=1"})
    with pytest.raises(MissingDependencyError, match=r"app@1.0.0 needs plugin base >=1"):
        home.install(app)
    assert home.installed() == []
    home.install(write_plugin(tmp_path / "src", "base", "1.0.0", CODE))
    home.install(app)
    with pytest.raises(
        PluginInstallError, match=r"cannot remove base@1.0.0: other installed plugins need it.*app@1"
    ):
        home.remove("base")
    assert home.remove("app") == ["app@1.0.0"]
    assert home.remove("base") == ["base@1.0.0"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 (an index as a web server would host it)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_publish_search_and_install_from_an_http_index(tmp_path: Path, served: tuple[Path, str]) -> None:
    index_dir, url = served
    for version in ("1.0.0", "1.1.0"):
        publish(write_plugin(tmp_path / "src", "acme", version, CODE), index_dir)
    publish(write_plugin(tmp_path / "src", "other", "0.3.0", CODE), index_dir)
    index = PluginIndex(url)
    assert [e.ref for e in index.search("acme")] == ["acme@1.0.0", "acme@1.1.0"]
    entry = index.find(*parse_requirement("acme==1.0.0"))
    archive = index.download(entry, tmp_path / "downloads")
    assert sha256_of(archive) == entry.sha256
    home = PluginHome(tmp_path / "home")
    assert home.install(archive).ref == "acme@1.0.0"
    assert index.find("acme").version == "1.1.0"
    with pytest.raises(PluginNotFoundError, match=r"acme >=2 is not in the index.*1.0.0, 1.1.0"):
        index.find(*parse_requirement("acme>=2"))


def test_a_tampered_archive_is_refused(tmp_path: Path, served: tuple[Path, str]) -> None:
    index_dir, url = served
    entry = publish(write_plugin(tmp_path / "src", "acme", "1.0.0", CODE), index_dir)
    (index_dir / entry.archive).write_bytes(b"not the published archive")
    with pytest.raises(DigestMismatchError, match=r"acme@1.0.0.*do not install it"):
        PluginIndex(url).download(entry, tmp_path / "downloads")
    assert not (tmp_path / "downloads" / entry.archive).exists()


def test_republishing_changed_content_under_one_version_is_refused(tmp_path: Path) -> None:
    src = write_plugin(tmp_path / "src", "acme", "1.0.0", CODE)
    publish(src, tmp_path / "index")
    publish(src, tmp_path / "index")  # same content: fine
    (src / "acme" / "nodes.py").write_text(CODE + "\n# changed\n")
    with pytest.raises(PluginIndexError, match="bump the version"):
        publish(src, tmp_path / "index")
    with pytest.raises(PluginIndexError, match="cannot fetch"):
        PluginIndex("http://127.0.0.1:9/nothing", timeout_s=2).entries()


def test_zip_archives_install_and_entries_escaping_the_archive_are_refused(tmp_path: Path) -> None:
    import zipfile

    src = write_plugin(tmp_path / "src", "zipped", "1.0.0", CODE)
    good = tmp_path / "zipped-1.0.0.zip"
    with zipfile.ZipFile(good, "w") as archive:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                archive.write(path, f"zipped-1.0.0/{path.relative_to(src).as_posix()}")
    assert PluginHome(tmp_path / "home").install(good).ref == "zipped@1.0.0"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../outside.txt", "x")
    with pytest.raises(PluginInstallError, match=r"'../outside.txt' points outside"):
        extract_archive(evil, tmp_path / "unpacked")
    assert not (tmp_path / "outside.txt").exists()
