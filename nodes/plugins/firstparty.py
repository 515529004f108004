"""First-party plugins: the plugin directories that ship with rayweave (`nodes/firstparty/<name>`).

They are package data, not importable packages of rayweave; `rayweave plugins install ml` installs one by its
name from here, before looking at any index.
"""

from __future__ import annotations

from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

__all__ = ["firstparty_dir", "firstparty_names", "firstparty_path"]

MANIFEST = "rayweave-plugin.toml"


def firstparty_dir() -> Path:
    """The directory holding the first-party plugin directories."""
    return Path(__file__).resolve().parent.parent / "firstparty"


def firstparty_names() -> list[str]:
    """The names of the first-party plugins (each a directory with a manifest), sorted."""
    root = firstparty_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())


def firstparty_path(requirement: str) -> Path | None:
    """The directory of the first-party plugin `requirement` names (`NAME`, or `NAME` with a version range
    its shipped version satisfies, e.g. `ml==1.0.0`), or None when it names none (then look in the index)."""
    from nodes.plugins.errors import PluginError
    from nodes.plugins.index import parse_requirement
    from nodes.plugins.manifest import open_plugin_dir

    try:
        name, spec = parse_requirement(requirement)
    except PluginError:
        return None
    if name not in firstparty_names():
        return None
    path = firstparty_dir() / name
    if spec:
        try:
            wanted = SpecifierSet(spec)
        except InvalidSpecifier:
            return None
        if not wanted.contains(open_plugin_dir(path).manifest.version, prereleases=True):
            return None
    return path
