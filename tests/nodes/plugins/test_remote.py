"""Plugin node definitions built from catalog JSON (no Ray): specs round-trip, invoke refuses to run outside
the plugin's runtime environment, and import errors name plugin, module and cause."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ray import cloudpickle

import typesys
from nodes import Catalog
from nodes.plugins import PluginEnvironmentError, PluginImportError, open_plugin_dir
from nodes.plugins.remote import (
    PluginNodeDefinition,
    collect_specs,
    definitions_from_catalog_json,
    spec_from_json,
)
from tests.nodes.plugins.fixtures import write_plugin

CODE = '''
from nodes import node

@node(version="7.0.0", cheap=True)
def score(x: float, weights: list[float] | None = None, *, scale: float = 2.0) -> float:
    """Scale a number.

    Args:
        x: the number.
    """
    return x * scale
'''


def test_every_builtin_spec_round_trips_through_json() -> None:
    for spec in Catalog.builtin().specs():
        assert spec_from_json(spec.to_json()).to_json() == spec.to_json()


@pytest.fixture
def plugin_defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[PluginNodeDefinition]:
    root = write_plugin(tmp_path, "acme", "2.1.0", CODE, package="acme_remote_test")
    # collect_specs normally runs in a Ray task inside the plugin's environment; here in-process for speed.
    monkeypatch.syspath_prepend(str(root))
    data = collect_specs("acme@2.1.0", ["acme_remote_test.nodes"])
    monkeypatch.delitem(sys.modules, "acme_remote_test.nodes")
    monkeypatch.delitem(sys.modules, "acme_remote_test")
    return definitions_from_catalog_json(
        open_plugin_dir(root), {"env_vars": {"RAYWEAVE_PLUGIN": "acme@2.1.0"}}, data
    )


def test_definitions_take_plugin_name_and_version_and_keep_their_ports(
    plugin_defs: list[PluginNodeDefinition],
) -> None:
    [definition] = plugin_defs
    spec = definition.spec
    assert spec.id == "acme/score@2" and spec.version == "2.1.0"
    assert spec.input("x").type == typesys.FLOAT
    assert spec.input("weights").type == typesys.optional(typesys.ListType(typesys.FLOAT))
    assert spec.param("scale").default == 2.0 and spec.description.startswith("Scale a number.")
    # Kept: fused with nodes of its own runtime environment only (engine.compile.optimize).
    assert spec.cheap is True
    catalog = Catalog.builtin()
    catalog.add(definition)
    assert catalog.get("acme/score") is definition


def test_invoke_outside_the_plugin_environment_refuses_to_import(
    plugin_defs: list[PluginNodeDefinition], monkeypatch: pytest.MonkeyPatch
) -> None:
    [definition] = plugin_defs
    monkeypatch.delenv("RAYWEAVE_PLUGIN", raising=False)
    with pytest.raises(PluginEnvironmentError, match=r"acme/score@2 of plugin acme@2.1.0.*runtime_env"):
        definition.invoke({"x": 1.0}, {})
    assert "acme_remote_test.nodes" not in sys.modules
    # cloudpickle, as Ray ships it (plain pickle cannot pickle Resources.custom, a mappingproxy).
    clone = cloudpickle.loads(cloudpickle.dumps(definition))
    assert isinstance(clone, PluginNodeDefinition)
    assert clone.spec == definition.spec and clone.runtime_env == definition.runtime_env


def test_invoke_inside_the_environment_runs_the_plugin_node(
    plugin_defs: list[PluginNodeDefinition], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    [definition] = plugin_defs
    monkeypatch.setenv("RAYWEAVE_PLUGIN", "acme@2.1.0")
    monkeypatch.syspath_prepend(str(tmp_path / "acme-2.1.0"))
    assert definition.invoke({"x": 1.5}, {"scale": 3.0}) == {"out": 4.5}


def test_an_import_error_names_plugin_module_and_cause(tmp_path: Path) -> None:
    root = write_plugin(tmp_path, "broken", "1.0.0", "import no_such_library_here\n")
    data = collect_specs("broken@1.0.0", ["no_such_module_for_sure"])
    with pytest.raises(PluginImportError) as info:
        definitions_from_catalog_json(open_plugin_dir(root), {}, data)
    message = str(info.value)
    assert "plugin broken@1.0.0" in message and "'no_such_module_for_sure'" in message
    assert "ModuleNotFoundError" in message


def test_plugin_docs_nest_node_pages_without_touching_code_blocks(
    plugin_defs: list[PluginNodeDefinition], tmp_path: Path
) -> None:
    from nodes.plugins.docs import plugin_markdown

    [definition] = plugin_defs
    definition.example = "```python\n# a comment in an example\n```"
    text = plugin_markdown(open_plugin_dir(tmp_path / "acme-2.1.0").manifest, plugin_defs)
    assert text.startswith("# Plugin `acme` 2.1.0\n")
    assert "\n## `acme/score@2`\n" in text and "\n### Inputs\n" in text
    assert "\n# a comment in an example\n" in text
    assert "| `x` | `Float` |" in text
