"""Discovery from plugin directories and from entry points, without importing plugin code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nodes.plugins.archive import build_archive
from nodes.plugins.discovery import discover, from_entry_points, scan_dir
from tests.nodes.plugins.fixtures import write_plugin

# Importing this module would fail: discovery must never import it.
EXPLODING = "raise RuntimeError('plugin code was imported in the calling process')\n"


def test_scans_directories_archives_and_nested_versions_and_reports_broken_ones(tmp_path: Path) -> None:
    dirs = tmp_path / "plugins"
    write_plugin(dirs, "acme", "1.0.0", EXPLODING, directory="acme/1.0.0")
    write_plugin(dirs, "acme", "2.0.0", EXPLODING, directory="acme/2.0.0")
    build_archive(write_plugin(tmp_path / "src", "zed", "0.1.0", EXPLODING), dirs)
    broken = write_plugin(dirs, "bad", "1.0.0", EXPLODING)
    (broken / "rayweave-plugin.toml").write_text('name = "bad"\nversion = "one"\nmodules = ["bad.nodes"]\n')
    found = scan_dir(dirs, extract_dir=tmp_path / "unpacked")
    assert sorted(p.ref for p in found.packages) == ["acme@1.0.0", "acme@2.0.0", "zed@0.1.0"]
    assert {p.origin for p in found.packages if p.name == "zed"} == {"archive"}
    assert (
        len(found.problems) == 1
        and "bad-1.0.0" in found.problems[0]
        and "field 'version'" in found.problems[0]
    )
    assert "acme.nodes" not in sys.modules and "zed.nodes" not in sys.modules


def test_duplicates_and_missing_dirs_are_problems_not_errors(tmp_path: Path) -> None:
    write_plugin(tmp_path / "a", "acme", "1.0.0", EXPLODING)
    write_plugin(tmp_path / "b", "acme", "1.0.0", EXPLODING)
    found = discover([tmp_path / "a", tmp_path / "b", tmp_path / "nope"], entry_points=False)
    assert [p.ref for p in found.packages] == ["acme@1.0.0"]
    assert any("found twice" in p for p in found.problems)
    assert any("does not exist" in p for p in found.problems)


def test_installed_distributions_announce_plugins_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    root = write_plugin(site, "epplug", "3.1.0", EXPLODING, directory=".")
    # An installed distribution ships its manifest as package data, inside the package.
    (root / "rayweave-plugin.toml").rename(root / "epplug" / "rayweave-plugin.toml")
    dist = site / "epplug-3.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epplug\nVersion: 3.1.0\n")
    (dist / "entry_points.txt").write_text("[rayweave.plugins]\nepplug = epplug\n")
    monkeypatch.syspath_prepend(str(site))
    found = from_entry_points()
    mine = [p for p in found.packages if p.name == "epplug"]
    assert [p.ref for p in mine] == ["epplug@3.1.0"]
    assert mine[0].origin == "distribution" and mine[0].root == site.resolve()
    assert "epplug.nodes" not in sys.modules
