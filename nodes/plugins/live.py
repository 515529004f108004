"""Installed plugins kept loaded in a running process (the server), with install and remove while it runs.

`LivePlugins` holds the loaded node definitions of every installed plugin version and hands out catalog
snapshots: `catalog()` is a new `Catalog` (built-ins plus plugins) each time, so a workflow compiled before a
remove keeps the definitions it resolved — and its runs finish with the removed version, whose code stays
uploaded in the Ray cluster — while workflows validated afterwards no longer find it, and the catalog's error
lists the versions that exist. Nothing restarts.

Several processes (API replicas) may share one set of plugin records (the store): each has its own
`LivePlugins`, and `catalog()` compares a cheap stamp of the records (which versions are recorded, and when)
with the one it loaded, at most every `check_every_s` seconds, and refreshes when another process installed or
removed something. With an event bus (`serve.bus.follow_plugin_changes`), a replica that installs or removes
announces it (`on_change`) and the others compare at once (`changed_elsewhere()`) instead of within the interval;
the records stay the truth, the notice only says when to look.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from packaging.version import Version

from nodes.catalog import Catalog
from nodes.plugins.errors import PluginError
from nodes.plugins.home import PluginHome
from nodes.plugins.loader import LoadReport, load_plugins
from nodes.plugins.manifest import PluginPackage
from nodes.plugins.remote import PluginNodeDefinition
from nodes.plugins.runtime import pin
from nodes.plugins.types import PluginTypes
from typesys import TypeRegistry

__all__ = ["LivePlugins", "records_stamp"]

log = logging.getLogger("rayweave.plugins")


def records_stamp(home: PluginHome) -> Hashable:
    """What identifies the current plugin records: every recorded `name@version` with its install time (when the
    record has one, as the store's rows do), so an install, a remove or a reinstall elsewhere changes it."""
    return tuple(
        sorted((r.name, r.version, str(getattr(r, "installed_at", ""))) for r in home.records.list())
    )


def _ref_key(ref: str) -> tuple[str, Version]:
    name, version = ref.rsplit("@", 1)
    return name, Version(version)


class LivePlugins:
    """The loaded plugins of one plugin home (plus `discovered` ones); thread-safe. Loading needs a connected Ray.

    A server builds one at startup (`LivePlugins(PluginHome(settings.home), discovered=discover(...).packages)`),
    calls `refresh()`, compiles each workflow against `catalog()`, and serves install/remove through it.
    """

    def __init__(
        self,
        home: PluginHome,
        *,
        discovered: Sequence[PluginPackage] = (),
        base: Callable[[], Catalog] = Catalog.builtin,
        timeout_s: float = 600.0,
        check_every_s: float | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.home = home
        #: Called after this process installed or removed a plugin version (e.g. to tell other replicas).
        self.on_change = on_change
        # None: never look at the records by itself (one process owns them, e.g. the CLI); a number: look at
        # most this often, from `catalog()`, whether another process changed them.
        self.check_every_s = check_every_s
        # Plugins found outside the home (RAYWEAVE_PLUGIN_DIRS, entry points): loaded, but not removable here.
        self.discovered = list(discovered)
        self.base = base
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._loaded: dict[str, list[PluginNodeDefinition]] = {}
        self._types: dict[str, PluginTypes] = {}
        self._failed: dict[str, PluginError] = {}
        self._stamp: Hashable = None
        self._checked_at = float("-inf")

    @property
    def failures(self) -> dict[str, PluginError]:
        """Installed plugin versions that could not be loaded, with their error."""
        with self._lock:
            return dict(self._failed)

    @property
    def loaded(self) -> dict[str, list[PluginNodeDefinition]]:
        """Loaded plugin versions (`name@version`) and their definitions."""
        with self._lock:
            return {ref: list(defs) for ref, defs in self._loaded.items()}

    def refresh(self) -> LoadReport:
        """Load installed versions not loaded yet, forget versions no longer installed, and re-pin the uploaded
        code of every loaded version in the cluster (call it at least once per `runtime.PIN_SECONDS`)."""
        with self._lock:
            # Taken before reading the records: a change made meanwhile shows up as a new stamp next time.
            self._stamp = records_stamp(self.home)
            self._checked_at = time.monotonic()
            installed = self.home.installed()
            refs = {p.ref for p in installed}
            installed += [p for p in self.discovered if p.ref not in refs]
            refs |= {p.ref for p in installed}
            for ref in [r for r in self._loaded if r not in refs]:
                del self._loaded[ref]
                self._types.pop(ref, None)
            self._failed = {r: e for r, e in self._failed.items() if r in refs}
            missing = [p for p in installed if p.ref not in self._loaded and p.ref not in self._failed]
            report = load_plugins(missing, None, available=installed, timeout_s=self.timeout_s)
            self._loaded.update(report.loaded)
            self._types.update(report.types)
            self._failed.update(report.failed)
            for definitions in self._loaded.values():
                if definitions:
                    pin(definitions[0].runtime_env)
            return report

    def install(self, source: Path, *, replace: bool = False) -> PluginPackage:
        """Install a plugin directory or archive and load it; if it cannot be loaded it is removed again and
        its error (`PluginImportError`, `PluginEnvironmentError`, ...) raised."""
        with self._lock:
            package = self.home.install(source, replace=replace)
            self._loaded.pop(package.ref, None)
            self._types.pop(package.ref, None)
            self._failed.pop(package.ref, None)
            report = self.refresh()
            error = report.failed.get(package.ref)
            if error is not None:
                self.home.remove(package.name, package.version)
                self._failed.pop(package.ref, None)
                raise error
        self._changed()
        return package

    def remove(self, name: str, version: str | None = None) -> list[str]:
        """Remove installed versions; catalogs handed out before keep working, new ones lack them."""
        with self._lock:
            removed = self.home.remove(name, version)
            for ref in removed:
                self._loaded.pop(ref, None)
                self._types.pop(ref, None)
                self._failed.pop(ref, None)
        if removed:
            self._changed()
        return removed

    def _changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception as exc:  # other replicas still notice within `check_every_s`
            log.warning("could not announce a change of the plugins: %s", exc)

    def changed_elsewhere(self) -> None:
        """Another process says it changed the plugin records: the next `catalog()` compares them at once,
        whatever `check_every_s` (when checks are on at all)."""
        with self._lock:
            self._checked_at = float("-inf")

    def refresh_if_changed(self) -> bool:
        """Refresh when the plugin records changed since the last refresh (another replica installed or removed
        a plugin); looks at most every `check_every_s` seconds. Returns whether it refreshed."""
        if self.check_every_s is None:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at < self.check_every_s:
                return False
            self._checked_at = now
            try:
                if records_stamp(self.home) == self._stamp:
                    return False
                report = self.refresh()
            except Exception as exc:  # the last good catalog keeps serving; the next check tries again
                log.warning("could not reload the plugins after a change of the plugin records: %s", exc)
                self._stamp = None
                return False
            for ref, error in report.failed.items():
                log.warning("plugin %s could not be loaded: %s", ref, error)
            return True

    def catalog(self) -> Catalog:
        """A new catalog: the base (built-in) node types plus every loaded plugin's, highest version per major
        (after `refresh_if_changed()`, so changes made by other processes show up), with a registry holding
        the types, validators and coercions the loaded plugins register."""
        self.refresh_if_changed()
        with self._lock:
            catalog = self.base()
            # Higher versions last: within one major the highest version serves the node type ids.
            for ref in sorted(self._loaded, key=_ref_key):
                catalog.extend(self._loaded[ref], replace=True)
            if self._types:
                catalog.registry = self._registry(catalog.registry)
            return catalog

    def _registry(self, base: TypeRegistry | None) -> TypeRegistry:
        """A copy of `base` (the default registry when None) with the loaded plugins' types; a plugin whose type
        names clash with types registered before it is left out of it, with a warning."""
        registry = base.copy() if base is not None else TypeRegistry.default()
        for ref in sorted(self._types, key=_ref_key):
            types = self._types[ref]
            problem = types.conflict(registry)
            if problem is not None:
                log.warning("the types of plugin %s are left out: %s", ref, problem)
                continue
            types.apply(registry)
        return registry
