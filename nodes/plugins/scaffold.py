"""`rayweave plugins new NAME`: a new plugin with one node, its test and its docs page, ready to publish.

```
NAME/
  rayweave-plugin.toml      manifest (name, version, modules, requirements, dependencies)
  conftest.py               puts the plugin directory on sys.path for pytest
  NAME_PKG/__init__.py
  NAME_PKG/nodes.py         one @node
  tests/test_nodes.py       runs the node with nodes.testing.run_node
  docs/NAME.md              the node's docs page (regenerate with `rayweave plugins docs NAME`)
```
The scaffold's tests pass as generated: `cd NAME && python -m pytest`.
"""

from __future__ import annotations

from pathlib import Path

from nodes.plugins.errors import PluginInstallError
from nodes.plugins.manifest import MANIFEST_FILE, PluginManifest, parse_manifest

__all__ = ["new_plugin", "package_name"]


def package_name(plugin: str) -> str:
    """The Python package name of a plugin's code: the plugin name with '-' turned into '_'."""
    return plugin.replace("-", "_")


def _files(name: str, pkg: str) -> dict[str, str]:
    return {
        MANIFEST_FILE: f'''name = "{name}"
version = "0.1.0"
description = "Nodes of the {name} plugin."
modules = ["{pkg}.nodes"]
# pip requirements; a path ending in .whl is a wheel shipped inside this directory.
requirements = []

# Other plugins this one needs, with version ranges, e.g. other-plugin = ">=1,<2".
[dependencies]

# Default Ray resources of nodes that declare none, e.g. num_cpus = 1.
[resources]

# Environment variables of the plugin's workers.
[env]
''',
        "conftest.py": '"""Makes the plugin package importable in its own tests (pytest adds this directory to sys.path)."""\n',
        f"{pkg}/__init__.py": f'"""The {name} rayweave plugin."""\n',
        f"{pkg}/nodes.py": f'''"""Nodes of the {name} plugin."""

from __future__ import annotations

from nodes import node


@node(plugin="{name}", version="0.1.0", category="{name}")
def greet(name: str, *, punctuation: str = "!") -> str:
    """Greet someone by name.

    Args:
        name: who to greet.
        punctuation: what ends the greeting.

    Returns:
        out: the greeting.
    """
    return f"Hello, {{name}}{{punctuation}}"
''',
        "tests/test_nodes.py": f'''"""Tests of the {name} plugin's nodes, run in-process with type checks by nodes.testing."""

from __future__ import annotations

from nodes.testing import run_node

from {pkg}.nodes import greet


def test_greet_greets_by_name() -> None:
    result = run_node(greet, inputs={{"name": "Ada"}})
    assert result.value == "Hello, Ada!"


def test_greet_takes_its_punctuation_param() -> None:
    result = run_node(greet, inputs={{"name": "Ada"}}, params={{"punctuation": "?"}})
    assert result.value == "Hello, Ada?"
''',
        f"docs/{name}.md": f"""# Plugin `{name}`

Nodes of the {name} plugin. Regenerate the reference below with `rayweave plugins docs {name} --path .`.

## `{name}/greet@0`

Greet someone by name.

| port | type | |
|---|---|---|
| input `name` | String | who to greet |
| param `punctuation` | String (default `"!"`) | what ends the greeting |
| output `out` | String | the greeting |
""",
    }


def new_plugin(name: str, parent: Path) -> Path:
    """Write a new plugin called `name` into `parent/name` and return that directory.

    The name is validated as a manifest name first; an existing directory is never overwritten.
    """
    pkg = package_name(name)
    target = Path(parent) / name
    manifest_text = _files(name, pkg)[MANIFEST_FILE]
    import tomllib

    manifest: PluginManifest = parse_manifest(tomllib.loads(manifest_text), target / MANIFEST_FILE)
    if target.exists():
        raise PluginInstallError(f"{target} already exists; choose another name or directory")
    for relative, text in _files(manifest.name, pkg).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
