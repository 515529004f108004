"""Plugins register types, validators and coercions with a hook (the manifest's `types`): the catalog's registry
knows them, the validators and coercions run in the plugin's environment. Section 11 of
docs/guides/writing-plugins.md runs here as written: its plugin module is written into a plugin directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings
from engine.compile import validate
from nodes import Catalog
from nodes.plugins import ManifestError, PluginImportError, open_plugin_dir
from nodes.plugins.home import PluginHome
from nodes.plugins.live import LivePlugins
from nodes.plugins.loader import load_plugins
from nodes.plugins.manifest import parse_manifest
from tests.nodes.plugins.fixtures import write_plugin

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "writing-plugins.md"


def _section() -> tuple[str, str, str]:
    """The manifest line, the plugin module and the code running it, from section 11 of the guide."""
    text = GUIDE.read_text(encoding="utf-8").split("## 11. Types, validators and coercions", 1)[1]
    [toml] = re.findall(r"^```toml\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    module, runner = re.findall(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    return toml, module, runner


def _guide_plugin(parent: Path) -> Path:
    toml, module, _ = _section()
    root = write_plugin(parent, "acme-temp", "1.0.0", module, package="acme_temp")
    manifest = root / "rayweave-plugin.toml"
    lines = manifest.read_text().splitlines()
    # The `types` line belongs to the top table, before `[dependencies]`.
    lines.insert(3, toml.strip())
    manifest.write_text("\n".join(lines) + "\n")
    return root


def test_the_manifest_names_a_types_hook_in_the_plugin_packages() -> None:
    toml, _, _ = _section()
    data = {"name": "acme-temp", "version": "1.0.0", "modules": ["acme_temp.nodes"]}
    hook = toml.split("=", 1)[1].split("#", 1)[0].strip().strip('"')
    assert parse_manifest({**data, "types": hook}, GUIDE).types == "acme_temp.nodes:register_types"
    with pytest.raises(ManifestError, match="module:function"):
        parse_manifest({**data, "types": "acme_temp.nodes"}, GUIDE)
    with pytest.raises(ManifestError, match="not in the plugin's packages"):
        parse_manifest({**data, "types": "elsewhere.types:register"}, GUIDE)


@pytest.mark.ray
@pytest.mark.slow
def test_the_guide_plugin_registers_types_that_are_checked_and_converted(
    ray_session: Any, tmp_path: Path
) -> None:
    _, _, runner = _section()
    root = _guide_plugin(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(runner, str(GUIDE), "exec"), namespace)
    catalog: Catalog = namespace["run_temperatures"](root, Settings(home=tmp_path / "home"))
    registry = catalog.registry
    assert registry is not None
    celsius = registry.nominal("Celsius")
    assert celsius is not None and str(celsius.parent) == "Float"
    assert registry.description("Celsius") == "A temperature in degrees Celsius."
    assert any(r.kind == "implicit" and str(r.target) == "Kelvin" for r in registry.coercions())
    # Workflow documents may name the plugin's types.
    typed = dict(namespace["TEMPERATURES"], inputs={"celsius": {"type": "Celsius"}})
    assert [d for d in validate(typed, catalog) if d.severity == "error"] == []
    unknown = dict(namespace["TEMPERATURES"], inputs={"celsius": {"type": "Fahrenheit"}})
    assert "RW115" in {d.code for d in validate(unknown, catalog)}
    # The server's live plugins give the same registry, built anew for each catalog.
    live = LivePlugins(PluginHome(tmp_path / "live-home"), discovered=[open_plugin_dir(root)])
    assert not live.refresh().failed
    live_registry = live.catalog().registry
    assert live_registry is not None and live_registry.nominal("Kelvin") is not None
    assert Catalog.builtin().registry is None  # nothing leaked into other catalogs


CLASH = """
import typesys

def register(registry):
    registry.register_type("Celsius", typesys.STRING)
"""

BROKEN = """
def register(registry):
    raise RuntimeError("no types today")
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_clashing_or_failing_types_hook_fails_only_its_plugin(ray_session: Any, tmp_path: Path) -> None:
    good = _guide_plugin(tmp_path)
    clash = write_plugin(tmp_path, "clash", "1.0.0", CLASH)
    broken = write_plugin(tmp_path, "broken", "1.0.0", BROKEN)
    for root in (clash, broken):
        manifest = root / "rayweave-plugin.toml"
        lines = manifest.read_text().splitlines()
        lines.insert(3, f'types = "{root.name.split("-")[0]}.nodes:register"')
        manifest.write_text("\n".join(lines) + "\n")
    catalog = Catalog.builtin()
    report = load_plugins([open_plugin_dir(p) for p in (good, clash, broken)], catalog, timeout_s=240)
    assert set(report.loaded) == {"acme-temp@1.0.0"}
    assert "already registered with parent Float" in str(report.failed["clash@1.0.0"])
    error = report.failed["broken@1.0.0"]
    assert isinstance(error, PluginImportError) and "no types today" in str(error)
    assert "broken.nodes:register" in str(error)
