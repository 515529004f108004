"""The plugin home: installed plugin versions under `{home}/plugins/<name>/<version>/`, and their records.

Install copies a plugin directory (or unpacks an archive) into the home after checking that its dependencies
resolve against what is installed; remove refuses to take away a version other installed plugins need.
Records go through `PluginRecords` — here a small JSON file, `{home}/plugins/installed.json`; the store's
`PluginRepository` (engine.store) offers the same three methods, so the engine can pass it instead.

Removing a version deletes its files, but runs that already started with it keep working: its code was
uploaded to the Ray cluster when its runtime environment was built.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from nodes.plugins.archive import extract_archive, is_archive
from nodes.plugins.errors import PluginError, PluginInstallError, PluginNotFoundError
from nodes.plugins.manifest import PluginPackage, open_plugin_dir
from nodes.plugins.resolve import dependents, resolve

__all__ = ["JsonPluginRecords", "PluginHome", "PluginRecord", "PluginRecords"]

RECORDS_FILE = "installed.json"


class PluginRecord(Protocol):
    """One installed plugin version as a record store returns it."""

    name: str
    version: str
    manifest: dict[str, Any]


class PluginRecords(Protocol):
    """Where installed plugin versions are recorded (the JSON file here; the database in the server)."""

    def add(self, name: str, version: str, manifest: Mapping[str, Any]) -> Any:
        """Record an installed plugin version (replacing an existing record of it)."""

    def remove(self, name: str, version: str) -> None:
        """Forget an installed plugin version."""

    def list(self) -> list[Any]:
        """Every record (objects with `name`, `version`, `manifest`)."""


class _Record:
    def __init__(self, name: str, version: str, manifest: dict[str, Any]) -> None:
        self.name, self.version, self.manifest = name, version, manifest


class JsonPluginRecords:
    """`PluginRecords` in one JSON file, rewritten atomically on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PluginInstallError(
                f"{self.path}: cannot read the installed-plugins record ({exc}); fix or delete it and reinstall"
            ) from None
        return dict(data.get("plugins", {}))

    def _write(self, records: Mapping[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"plugins": dict(sorted(records.items()))}, indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".installed-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, self.path)

    def add(self, name: str, version: str, manifest: Mapping[str, Any]) -> _Record:
        """Record an installed plugin version."""
        records = self._read()
        records[f"{name}@{version}"] = {"name": name, "version": version, "manifest": dict(manifest)}
        self._write(records)
        return _Record(name, version, dict(manifest))

    def remove(self, name: str, version: str) -> None:
        """Forget an installed plugin version (raises `PluginNotFoundError` if it was not recorded)."""
        records = self._read()
        if records.pop(f"{name}@{version}", None) is None:
            raise PluginNotFoundError(f"plugin {name}@{version} is not installed; nothing to remove")
        self._write(records)

    def list(self) -> list[_Record]:
        """Every record, by name then version."""
        return [_Record(r["name"], r["version"], r["manifest"]) for _, r in sorted(self._read().items())]


class PluginHome:
    """Installed plugin versions in `{home}/plugins`, with their records."""

    def __init__(self, home: Path, records: PluginRecords | None = None) -> None:
        self.plugins_dir = Path(home) / "plugins"
        self.records: PluginRecords = records or JsonPluginRecords(self.plugins_dir / RECORDS_FILE)

    def path_of(self, name: str, version: str) -> Path:
        """Directory of an installed plugin version."""
        return self.plugins_dir / name / version

    def installed(self) -> list[PluginPackage]:
        """Every recorded plugin version whose directory is present, by name then version."""
        packages = []
        for record in self.records.list():
            directory = self.path_of(record.name, record.version)
            if directory.is_dir():
                packages.append(open_plugin_dir(directory, origin="installed"))
        return sorted(packages, key=lambda p: (p.name, Version(p.version)))

    def get(self, name: str, spec: str = "") -> PluginPackage:
        """The highest installed version of `name` within the range `spec` (`PluginNotFoundError` otherwise)."""
        versions = [p for p in self.installed() if p.name == name]
        matching = [p for p in versions if SpecifierSet(spec).contains(Version(p.version), prereleases=True)]
        if not matching:
            have = ", ".join(p.version for p in versions) or "none"
            raise PluginNotFoundError(
                f"plugin {name} {spec or '(any version)'} is not installed (installed versions: {have}); "
                f"`rayweave plugins install {name}` installs it"
            )
        return matching[-1]

    def install(self, source: Path, *, replace: bool = False) -> PluginPackage:
        """Install a plugin directory or archive; its dependencies must resolve against the installed set.

        Installing a version that is already installed is an error unless `replace`.
        """
        source = Path(source)
        self.plugins_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.plugins_dir, prefix=".staging-"))
        try:
            if is_archive(source) and source.is_file():
                root = extract_archive(source, staging / "unpacked")
            elif source.is_dir():
                root = staging / "copy"
                shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
            else:
                raise PluginInstallError(f"{source}: not a plugin directory or archive (.tar.gz, .zip)")
            package = open_plugin_dir(root)
            target = self.path_of(package.name, package.version)
            if target.exists() and not replace:
                raise PluginInstallError(
                    f"plugin {package.ref} is already installed in {target}; remove it first, or install with "
                    f"--force to replace it"
                )
            others = [p.manifest for p in self.installed() if p.ref != package.ref]
            resolve(package.manifest, others)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(root, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.records.add(package.name, package.version, package.manifest.to_json())
        return open_plugin_dir(target, origin="installed")

    def remove(self, name: str, version: str | None = None) -> list[str]:
        """Remove one version (or every version) of a plugin; refused while other installed plugins need it.

        Returns the removed `name@version`s.
        """
        installed = self.installed()
        doomed = [p for p in installed if p.name == name and (version is None or p.version == version)]
        if not doomed:
            have = ", ".join(p.ref for p in installed if p.name == name) or "none"
            raise PluginNotFoundError(
                f"plugin {name}{'@' + version if version else ''} is not installed (installed: {have}); "
                f"`rayweave plugins list` shows what is"
            )
        remaining = [p.manifest for p in installed if p not in doomed]
        broken = dependents(name, remaining)
        if broken:
            needing = "; ".join(f"{ref}: {err}" for ref, err in sorted(broken.items()))
            raise PluginInstallError(
                f"cannot remove {', '.join(p.ref for p in doomed)}: other installed plugins need it ({needing}); "
                f"remove those first"
            )
        for package in doomed:
            self.records.remove(package.name, package.version)
            shutil.rmtree(self.path_of(package.name, package.version), ignore_errors=True)
        parent = self.plugins_dir / name
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
        return [p.ref for p in doomed]

    def check(self) -> dict[str, PluginError]:
        """Installed versions whose dependencies do not resolve (e.g. after a manual change), with the error."""
        installed = [p.manifest for p in self.installed()]
        problems: dict[str, PluginError] = {}
        for manifest in installed:
            try:
                resolve(manifest, installed)
            except PluginError as exc:
                problems[manifest.ref] = exc
        return problems
