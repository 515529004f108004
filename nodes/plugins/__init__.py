"""Plugins: node packages that run in their own Ray runtime environments.

A plugin is a directory, an archive or an installed distribution with a manifest (`nodes.plugins.manifest`).
It is found without importing it (`discovery`), installed into the plugin home (`home`), resolved against the
other installed plugins (`resolve`), given a Ray runtime environment (`runtime`), and its node definitions are
read inside that environment by a Ray task (`remote`, `loader`). Plugin indexes (`index`) publish and serve
archives with sha256 digests; `scaffold` starts a new plugin; `docs` documents one.

Submodules import lazily what they need; importing this package loads no plugin and needs no Ray.
"""

from __future__ import annotations

from nodes.plugins.errors import (
    CircularDependencyError,
    ConflictingDependencyError,
    DependencyError,
    DigestMismatchError,
    ManifestError,
    MissingDependencyError,
    PluginEnvironmentError,
    PluginError,
    PluginImportError,
    PluginIndexError,
    PluginInstallError,
    PluginNotFoundError,
)
from nodes.plugins.manifest import PluginManifest, PluginPackage, load_manifest, open_plugin_dir

__all__ = [
    "CircularDependencyError",
    "ConflictingDependencyError",
    "DependencyError",
    "DigestMismatchError",
    "ManifestError",
    "MissingDependencyError",
    "PluginEnvironmentError",
    "PluginError",
    "PluginImportError",
    "PluginIndexError",
    "PluginInstallError",
    "PluginManifest",
    "PluginNotFoundError",
    "PluginPackage",
    "load_manifest",
    "open_plugin_dir",
]
