"""Finding plugins without importing them: in plugin directories, and in installed distributions that announce
themselves through the entry point group `rayweave.plugins`.

A plugin directory (`RAYWEAVE_PLUGIN_DIRS`, or the plugin home) may hold plugin directories (each with a
manifest), plugin archives (`.tar.gz`, `.zip`, unpacked into `extract_dir`), and directories of those, two
levels deep (`{home}/plugins/<name>/<version>/`). An entry point's value is the plugin's top-level module
(`acme_score = "acme_score"`); its manifest is `rayweave-plugin.toml` inside that package. Only manifests are
read; a broken one is reported as a problem and the others are still found.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nodes.plugins.archive import extract_archive, is_archive
from nodes.plugins.errors import PluginError
from nodes.plugins.manifest import MANIFEST_FILE, PluginPackage, find_manifest, open_plugin_dir

__all__ = ["ENTRY_POINT_GROUP", "Discovery", "discover", "from_entry_points", "scan_dir"]

ENTRY_POINT_GROUP = "rayweave.plugins"
_MAX_DEPTH = 2


@dataclass
class Discovery:
    """Plugin versions found (the first one found wins for a `name@version`), and what could not be read."""

    packages: list[PluginPackage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, package: PluginPackage) -> None:
        """Record a plugin version, or a problem when the same `name@version` was found before."""
        for known in self.packages:
            if known.ref == package.ref:
                self.problems.append(
                    f"plugin {package.ref} found twice: {known.manifest_path} and {package.manifest_path}; "
                    f"using the first, remove the other"
                )
                return
        self.packages.append(package)

    def merge(self, other: Discovery) -> None:
        """Add another discovery's plugins and problems to this one."""
        for package in other.packages:
            self.add(package)
        self.problems.extend(other.problems)


def _scan(directory: Path, depth: int, extract_dir: Path | None, found: Discovery) -> None:
    if find_manifest(directory) is not None:
        try:
            found.add(open_plugin_dir(directory))
        except PluginError as exc:
            found.problems.append(str(exc))
        return
    if depth >= _MAX_DEPTH:
        return
    for child in sorted(directory.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            _scan(child, depth + 1, extract_dir, found)
        elif child.is_file() and is_archive(child):
            if extract_dir is None:
                found.problems.append(f"{child}: plugin archive skipped (no directory to unpack it into)")
                continue
            try:
                root = extract_archive(child, extract_dir / child.name.replace(".", "_"))
                found.add(open_plugin_dir(root, origin="archive"))
            except PluginError as exc:
                found.problems.append(str(exc))


def scan_dir(directory: Path, *, extract_dir: Path | None = None) -> Discovery:
    """The plugins in one directory (see the module docstring for the layout)."""
    found = Discovery()
    directory = Path(directory)
    if not directory.is_dir():
        found.problems.append(
            f"{directory}: plugin directory does not exist; create it or fix RAYWEAVE_PLUGIN_DIRS"
        )
        return found
    _scan(directory, 0, extract_dir, found)
    return found


def from_entry_points(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> Discovery:
    """The plugins of installed distributions (entry point group `rayweave.plugins`), without importing them."""
    found = Discovery()
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for entry in entry_points:
        top = entry.value.split(":", 1)[0].split(".", 1)[0].strip()
        # find_spec of a top-level name locates it on sys.path without executing it.
        spec = importlib.util.find_spec(top)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            found.problems.append(
                f"entry point {entry.name!r} ({ENTRY_POINT_GROUP}) names {top!r}, which is not an installed "
                f"package; reinstall the distribution that provides it"
            )
            continue
        package_dir = Path(locations[0])
        if not (package_dir / MANIFEST_FILE).is_file():
            found.problems.append(
                f"entry point {entry.name!r} ({ENTRY_POINT_GROUP}): package {top!r} has no {MANIFEST_FILE} in "
                f"{package_dir}; ship the manifest as package data"
            )
            continue
        try:
            manifest_dir = package_dir
            package = open_plugin_dir(manifest_dir, origin="distribution")
        except PluginError as exc:
            found.problems.append(str(exc))
            continue
        # The code of an installed plugin lives next to its package, not inside it.
        found.add(
            PluginPackage(package.manifest, package_dir.parent, package.manifest_path, origin="distribution")
        )
    return found


def discover(
    plugin_dirs: Sequence[Path] = (), *, entry_points: bool = True, extract_dir: Path | None = None
) -> Discovery:
    """Every plugin version in `plugin_dirs` (in order) and, with `entry_points`, in installed distributions."""
    found = Discovery()
    for directory in plugin_dirs:
        found.merge(scan_dir(directory, extract_dir=extract_dir))
    if entry_points:
        found.merge(from_entry_points())
    return found
