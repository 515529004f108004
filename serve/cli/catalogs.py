"""The node catalog a command compiles against: the built-in library plus the installed plugins.

Plugins are read inside their own Ray runtime environments, so a catalog with plugins needs Ray; when no plugin
is installed or discovered, the built-in catalog is returned without touching Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.settings import Settings
    from nodes import Catalog
    from nodes.plugins.live import LivePlugins


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
