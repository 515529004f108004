"""Which catalog the CLI compiles against: built-ins alone without plugins, plus the installed plugins."""

from __future__ import annotations

from pathlib import Path

from cluster.settings import Settings
from serve.cli.catalogs import catalog_for, plugins_of


def test_without_plugins_the_builtin_catalog_is_used_without_ray(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    assert plugins_of(settings) is None
    catalog = catalog_for(settings)
    assert "builtin/add@1" in catalog


def test_a_plugin_dir_makes_the_plugins_known(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "greet"
    (plugin / "greet").mkdir(parents=True)
    (plugin / "greet" / "__init__.py").write_text("")
    (plugin / "rayweave-plugin.toml").write_text(
        'name = "greet"\nversion = "1.0.0"\nmodules = ["greet"]\n', encoding="utf-8"
    )
    settings = Settings(home=tmp_path / "home", plugin_dirs=[tmp_path / "plugins"])
    plugins = plugins_of(settings)
    assert plugins is not None
    assert [package.ref for package in plugins.discovered] == ["greet@1.0.0"]
