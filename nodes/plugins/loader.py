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
from nodes.sandbox.policy import UNTRUSTED_VAR, SandboxPolicy

__all__ = ["LoadReport", "add_types", "latest_per_major", "load_plugins", "untrusted_types_message"]


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
    sandbox: SandboxPolicy | None = None,
) -> LoadReport:
    """Load plugin versions (needs a connected Ray) and add their definitions to `catalog` when given, and the
    types, validators and coercions their types hooks register to its registry (made from
    `TypeRegistry.default()` when the catalog has none), so that workflows compiled against it know them.

    Dependencies resolve against `available` (the installed set; default: `packages` themselves). Their code
    joins the runtime environment of the plugins that need them; their own nodes load only if in `packages`.
    A plugin whose type names clash with types already in the registry fails to load (`PluginError`).

    Trust is decided by `sandbox` (default: the admin's settings in this process's environment,
    `SandboxPolicy.from_environment`) over each manifest: an untrusted plugin's modules are imported in the
    sandbox, and an untrusted plugin with a `types` hook is refused (its validators and coercions would run
    outside the sandbox), naming the plugin and the setting.
    """
    policy = sandbox if sandbox is not None else SandboxPolicy.from_environment()
    report = LoadReport()
    kept, report.superseded = latest_per_major(packages)
    pool = list(available) if available is not None else list(packages)
    by_ref = {p.ref: p for p in [*pool, *packages]}
    manifests = [p.manifest for p in pool]
    pending: list[PendingRead] = []
    for package in kept:
        try:
            trust = policy.trust_of(package.name, package.manifest.trust)
            if trust == "untrusted" and package.manifest.types:
                raise PluginError(untrusted_types_message(package))
            resolution = resolve(package.manifest, manifests)
            dependencies = [by_ref[ref] for ref in resolution.refs]
            env = build_runtime_env(package, dependencies, scratch_dir=scratch_dir)
            pending.append(submit_read(package, env, trust=trust))
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


def untrusted_types_message(package: PluginPackage) -> str:
    """Why an untrusted plugin with a `types` hook is not loaded, and what the admin can do."""
    return (
        f"plugin {package.ref}: not loaded: the admin marks it untrusted ({UNTRUSTED_VAR}), but its manifest "
        f"{package.manifest_path} declares a types hook ({package.manifest.types}) whose validators and "
        f"coercions would run outside the sandbox; trust the plugin (RAYWEAVE_TRUSTED_PLUGINS, once reviewed) "
        f"or remove its 'types' hook"
    )


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
