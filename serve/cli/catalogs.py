"""The node catalog a command compiles against: the built-in library plus the installed plugins.

Plugins are read inside their own Ray runtime environments, so a catalog with plugins needs Ray; when no plugin
is installed or discovered, the built-in catalog is returned without touching Ray. `LocalCatalog` is the catalog
backend of `rayweave nodes`, `types` and `validate` without `--server`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.settings import Settings
    from nodes import Catalog
    from nodes.plugins.live import LivePlugins
    from typesys import TypeRegistry


def plugins_of(settings: Settings) -> LivePlugins | None:
    """The plugins of this installation (home and `plugin_dirs`), not yet loaded; None when there are none."""
    from nodes.plugins.discovery import discover
    from nodes.plugins.home import PluginHome
    from nodes.plugins.live import LivePlugins

    home = PluginHome(settings.home)
    discovered = discover(settings.plugin_dirs).packages
    if not discovered and not home.installed():
        return None
    return LivePlugins(home, discovered=discovered)


def catalog_for(settings: Settings, *, warn: bool = True) -> Catalog:
    """The built-in catalog plus every loadable plugin (starting or joining Ray first when there are plugins).

    A plugin that fails to load is left out and, with `warn`, reported on stderr; its nodes then fail
    validation with a diagnostic naming the versions that exist.
    """
    from nodes import Catalog

    plugins = plugins_of(settings)
    if plugins is None:
        return Catalog.builtin()
    from cluster.ray_runtime import ensure_ray

    ensure_ray(settings)
    plugins.refresh()
    if warn:
        import typer

        for ref, error in sorted(plugins.failures.items()):
            typer.echo(f"warning: plugin {ref} could not be loaded and is left out: {error}", err=True)
    return plugins.catalog()


class LocalCatalog:
    """The catalog backend without `--server`: this installation's node and type catalog.

    `nodes` lists the built-in library only (loading installed plugins means starting Ray, each plugin being
    read inside its own runtime environment: too heavy for a listing; `rayweave plugins docs` documents
    plugins); `types` and `registry` include the types the installed plugins register, and so need the
    invocation's `settings` (`nodes` and `validate` do not read them: a command that needs no settings does not
    fail on a malformed `RAYWEAVE_*` variable).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def nodes(self, category: str | None, accepts: str | None, produces: str | None) -> list[dict[str, Any]]:
        """The built-in node types (their JSON form), filtered; a malformed port type raises
        `typesys.TypeParseError`."""
        from nodes import Catalog

        return [
            s.to_json() for s in Catalog.builtin().find(category=category, accepts=accepts, produces=produces)
        ]

    def registry(self) -> TypeRegistry:
        """The type registry: the built-in types and rules plus those the installed plugins register (their
        hooks run in the plugins' own environments, which starts Ray when plugins are installed)."""
        import typesys

        if self.settings is None:
            raise ValueError(
                "the type registry of an installation needs its settings: LocalCatalog(settings)"
            )
        registry = catalog_for(self.settings).registry
        return registry if registry is not None else typesys.TypeRegistry.default()

    def types(self) -> dict[str, Any]:
        """The type catalog of `registry()`."""
        catalog: dict[str, Any] = self.registry().catalog()
        return catalog

    def validate(self, file: Path, insert_conversions: bool) -> list[Any]:
        """The diagnostics of the workflow in `file`, checked here (see `workflow_files.diagnose`)."""
        from serve.cli.workflow_files import diagnose

        return diagnose(file, insert_conversions)[0]
