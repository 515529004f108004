"""Loading plugin versions into a catalog: resolve their dependencies, build their runtime environments, read
their node definitions inside those environments (in parallel), and add them to a `Catalog`.

One plugin's failure (a broken manifest, a missing dependency, an import error, a requirement that does not
install) is recorded against that plugin version only; the others load. Within one plugin name and major
version only the highest version is loaded: `acme@2.1.0` supersedes `acme@2.0.0` (both would be `acme/...@2`),
while `acme@1.4.0` and `acme@2.1.0` load side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from nodes.catalog import Catalog
from nodes.plugins.errors import PluginError
from nodes.plugins.manifest import PluginPackage
from nodes.plugins.remote import PendingRead, PluginNodeDefinition, submit_read
from nodes.plugins.resolve import resolve
from nodes.plugins.runtime import build_runtime_env
from nodes.plugins.types import PluginTypes

__all__ = ["LoadReport", "add_types", "latest_per_major", "load_plugins"]


@dataclass
class LoadReport:
    """What `load_plugins` did, per plugin version (`name@version`)."""

    loaded: dict[str, list[PluginNodeDefinition]] = field(default_factory=dict)
    failed: dict[str, PluginError] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)
    #: What the types hooks of loaded plugin versions registered (versions without a hook are absent).
    types: dict[str, PluginTypes] = field(default_factory=dict)

    @property
    def definitions(self) -> list[PluginNodeDefinition]:
        """Every loaded definition."""
        return [d for defs in self.loaded.values() for d in defs]


def latest_per_major(packages: Sequence[PluginPackage]) -> tuple[list[PluginPackage], dict[str, str]]:
    """The highest version of each plugin name and major, and `{superseded ref: the ref that wins}`."""
    best: dict[tuple[str, int], PluginPackage] = {}
    for package in packages:
        key = (package.name, package.manifest.major)
        if key not in best or Version(package.version) > Version(best[key].version):
            best[key] = package
    kept = [p for p in packages if best[(p.name, p.manifest.major)] is p]
    superseded = {p.ref: best[(p.name, p.manifest.major)].ref for p in packages if p not in kept}
    return kept, superseded


def load_plugins(
    packages: Sequence[PluginPackage],
    catalog: Catalog | None = None,
    *,
    available: Sequence[PluginPackage] | None = None,
    timeout_s: float = 600.0,
    scratch_dir: Path | None = None,
) -> LoadReport:
    """Load plugin versions (needs a connected Ray) and add their definitions to `catalog` when given, and the
    types, validators and coercions their types hooks register to its registry (made from
    `TypeRegistry.default()` when the catalog has none), so that workflows compiled against it know them.

    Dependencies resolve against `available` (the installed set; default: `packages` themselves). Their code
    joins the runtime environment of the plugins that need them; their own nodes load only if in `packages`.
    A plugin whose type names clash with types already in the registry fails to load (`PluginError`).
    """
    report = LoadReport()
    kept, report.superseded = latest_per_major(packages)
    pool = list(available) if available is not None else list(packages)
    by_ref = {p.ref: p for p in [*pool, *packages]}
    manifests = [p.manifest for p in pool]
    pending: list[PendingRead] = []
    for package in kept:
        try:
            resolution = resolve(package.manifest, manifests)
            dependencies = [by_ref[ref] for ref in resolution.refs]
            env = build_runtime_env(package, dependencies, scratch_dir=scratch_dir)
            pending.append(submit_read(package, env))
        except PluginError as exc:
            report.failed[package.ref] = exc
    for read in pending:
        try:
            definitions = read.result(timeout_s)
            if catalog is not None:
                if read.types is not None:
                    add_types(catalog, read.types)
                catalog.extend(definitions, replace=True)
        except (PluginError, ValueError) as exc:
            error = exc if isinstance(exc, PluginError) else PluginError(f"plugin {read.package.ref}: {exc}")
            report.failed[read.package.ref] = error
            continue
        report.loaded[read.package.ref] = definitions
        if read.types is not None:
            report.types[read.package.ref] = read.types
    return report


def add_types(catalog: Catalog, types: PluginTypes) -> None:
    """Register a plugin's types in `catalog`'s registry (a default one is made when it has none); raises
    `PluginError` when a type name is registered already with another parent."""
    import typesys

    if catalog.registry is None:
        catalog.registry = typesys.TypeRegistry.default()
    try:
        types.apply(catalog.registry)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
