"""Plugin-to-plugin dependencies, resolved against the installed set of plugin versions.

A plugin that depends on another gets that plugin's code in its runtime environment, so a dependency closure
must hold exactly one version of each plugin: the resolver picks, for every plugin needed, the highest
installed version that satisfies every range asking for it (backtracking when a choice leads to a conflict).
Missing, conflicting and circular dependencies are rejected with a message naming who needs what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from nodes.plugins.errors import (
    CircularDependencyError,
    ConflictingDependencyError,
    DependencyError,
    MissingDependencyError,
)
from nodes.plugins.manifest import PluginManifest

__all__ = ["Resolution", "dependents", "resolve"]


@dataclass(frozen=True)
class Resolution:
    """The dependency closure of one plugin version: `order` lists the plugin versions it needs, dependencies
    before the plugins that need them (the root itself is not in it)."""

    root: PluginManifest
    order: tuple[PluginManifest, ...] = ()

    @property
    def refs(self) -> list[str]:
        """`name@version` of every dependency, in `order`."""
        return [m.ref for m in self.order]


@dataclass
class _Search:
    by_name: Mapping[str, list[PluginManifest]]
    failure: DependencyError | None = None
    chosen_by: dict[str, str] = field(default_factory=dict)

    def fail(self, error: DependencyError) -> None:
        # The first failure is the most telling one: later ones come from backtracking around it.
        if self.failure is None:
            self.failure = error

    def solve(
        self, chosen: dict[str, PluginManifest], queue: list[tuple[PluginManifest, str, str]]
    ) -> dict[str, PluginManifest] | None:
        if not queue:
            return chosen
        (requirer, dep, spec), rest = queue[0], queue[1:]
        wanted = SpecifierSet(spec)
        if dep in chosen:
            if wanted.contains(chosen[dep].parsed_version, prereleases=True):
                return self.solve(chosen, rest)
            self.fail(
                ConflictingDependencyError(
                    f"plugin {requirer.ref} needs {dep} {spec or '(any version)'}, but "
                    f"{self.chosen_by.get(dep, 'the plugin being resolved')} needs {dep}@{chosen[dep].version}; "
                    f"one closure can hold only one version of {dep} — widen one of the ranges or install "
                    f"versions that agree"
                )
            )
            return None
        versions = self.by_name.get(dep, [])
        candidates = [m for m in versions if wanted.contains(m.parsed_version, prereleases=True)]
        if not candidates:
            installed = ", ".join(m.version for m in versions) or "none"
            self.fail(
                MissingDependencyError(
                    f"plugin {requirer.ref} needs plugin {dep} {spec or '(any version)'}, which is not installed "
                    f"(installed versions of {dep}: {installed}); install a matching version first, e.g. "
                    f"`rayweave plugins install {dep}`"
                )
            )
            return None
        for candidate in candidates:
            self.chosen_by[dep] = f"plugin {requirer.ref}"
            more = [(candidate, name, s) for name, s in sorted(candidate.dependencies.items())]
            solved = self.solve({**chosen, dep: candidate}, rest + more)
            if solved is not None:
                return solved
        return None


def _cycle(root: PluginManifest, chosen: Mapping[str, PluginManifest]) -> list[str] | None:
    path: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for dep in sorted(chosen[name].dependencies):
            found = visit(dep)
            if found:
                return found
        path.pop()
        done.add(name)
        return None

    return visit(root.name)


def _order(root: PluginManifest, chosen: Mapping[str, PluginManifest]) -> tuple[PluginManifest, ...]:
    ordered: list[PluginManifest] = []

    def visit(name: str) -> None:
        manifest = chosen[name]
        if manifest in ordered:
            return
        for dep in sorted(manifest.dependencies):
            visit(dep)
        ordered.append(manifest)

    visit(root.name)
    return tuple(m for m in ordered if m.name != root.name)


def resolve(root: PluginManifest, installed: Iterable[PluginManifest]) -> Resolution:
    """Resolve the plugins `root` needs against `installed` (versions of `root`'s own name are ignored).

    Raises `MissingDependencyError`, `ConflictingDependencyError` or `CircularDependencyError`.
    """
    by_name: dict[str, list[PluginManifest]] = {}
    for manifest in installed:
        if manifest.name != root.name:
            by_name.setdefault(manifest.name, []).append(manifest)
    for versions in by_name.values():
        versions.sort(key=lambda m: Version(m.version), reverse=True)
    search = _Search(by_name)
    # Dependencies back on the root plugin itself can only be satisfied by the root version: it is pre-chosen.
    queue = [(root, name, spec) for name, spec in sorted(root.dependencies.items())]
    chosen = search.solve({root.name: root}, queue)
    if chosen is None:
        assert search.failure is not None
        raise search.failure
    cycle = _cycle(root, chosen)
    if cycle:
        shown = " -> ".join(f"{name}@{chosen[name].version}" for name in cycle)
        raise CircularDependencyError(
            f"plugin {root.ref} has circular plugin dependencies: {shown}; plugins must depend on each other "
            f"in one direction only (move the shared nodes or types into a plugin both depend on)"
        )
    return Resolution(root=root, order=_order(root, chosen))


def dependents(name: str, remaining: Iterable[PluginManifest]) -> dict[str, DependencyError]:
    """The plugin versions in `remaining` whose dependencies no longer resolve, e.g. after removing `name`.

    Only plugins that depend on `name`, directly or through others, are checked; the result maps
    `name@version` to the resolution error.
    """
    remaining = list(remaining)
    affected = {name}
    grew = True
    while grew:
        before = len(affected)
        affected |= {m.name for m in remaining if affected & set(m.dependencies)}
        grew = len(affected) > before
    broken: dict[str, DependencyError] = {}
    for manifest in remaining:
        if not affected & set(manifest.dependencies):
            continue
        try:
            resolve(manifest, remaining)
        except DependencyError as exc:
            broken[manifest.ref] = exc
    return broken
