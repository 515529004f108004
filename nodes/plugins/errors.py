"""Errors of the plugin system. Each subclasses a builtin; each message names the plugin (and the file, field,
module or dependency involved) and says what to do."""

from __future__ import annotations

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
    "PluginNotFoundError",
]


class PluginError(Exception):
    """Base class of every error raised by `nodes.plugins`."""


class ManifestError(PluginError, ValueError):
    """A plugin manifest is missing, unreadable or invalid; the message names the file and the field."""


class PluginNotFoundError(PluginError, LookupError):
    """No plugin (or no version of it matching a range) is installed, discovered or in the index."""


class DependencyError(PluginError, ValueError):
    """The plugins a plugin needs cannot be resolved against the installed set."""


class MissingDependencyError(DependencyError):
    """A required plugin is not installed in any version matching the required range."""


class ConflictingDependencyError(DependencyError):
    """Two plugins of one dependency closure need incompatible versions of the same plugin."""


class CircularDependencyError(DependencyError):
    """Plugins depend on each other in a cycle; the message shows the cycle."""


class PluginImportError(PluginError, ImportError):
    """A module of a plugin failed to import inside the plugin's runtime environment."""


class PluginEnvironmentError(PluginError, RuntimeError):
    """A plugin's Ray runtime environment could not be built, or plugin code ran outside of it."""


class PluginInstallError(PluginError, OSError):
    """Installing or removing a plugin in the plugin home failed (e.g. removing a plugin others need)."""


class PluginIndexError(PluginError, LookupError):
    """A plugin index cannot be read, or has no entry for the plugin and version asked for."""


class DigestMismatchError(PluginError, ValueError):
    """A downloaded plugin archive does not have the sha256 digest its index entry promises."""
