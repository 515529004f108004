"""What goes into a plugin version's runtime environment (no Ray: the local description before upload)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.plugins import ManifestError, PluginEnvironmentError, open_plugin_dir
from nodes.plugins.runtime import build_runtime_env, describe_runtime_env
from tests.nodes.plugins.fixtures import build_wheel, write_plugin

CODE = "from nodes import node\n"


def test_code_wheels_requirements_and_env_of_the_plugin_and_its_dependencies(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "tinylib", "1.0.0", {"tinylib/__init__.py": ""})
    base = open_plugin_dir(
        write_plugin(
            tmp_path, "base", "1.0.0", CODE, requirements=("packaging>=23",), env={"MODE": "base", "B": "1"}
        )
    )
    app = open_plugin_dir(
        write_plugin(
            tmp_path,
            "app",
            "2.0.0",
            CODE,
            wheels={"wheels/tinylib-1.0.0-py3-none-any.whl": wheel},
            dependencies={"base": ">=1"},
            env={"MODE": "app"},
        )
    )
    env = describe_runtime_env(app, [base], reuse_installed=False)
    assert env["py_modules"] == [
        str(base.root / "base"),
        str(app.root / "app"),
        str(app.root / "wheels" / "tinylib-1.0.0-py3-none-any.whl"),
    ]
    assert env["pip"] == {"packages": ["packaging>=23"], "pip_check": False}
    # The plugin's own variables win over its dependencies'; RAYWEAVE_PLUGIN marks the environment, and
    # RAYWEAVE_PLUGIN_CODE names the versions whose code it holds.
    assert env["env_vars"] == {
        "MODE": "app",
        "B": "1",
        "RAYWEAVE_PLUGIN": "app@2.0.0",
        "RAYWEAVE_PLUGIN_CODE": f"{base.ref},app@2.0.0",
    }
    assert "pip" not in describe_runtime_env(app)


def test_a_module_or_wheel_missing_from_the_plugin_directory_is_named(tmp_path: Path) -> None:
    root = write_plugin(tmp_path, "app", "1.0.0", CODE)
    manifest = root / "rayweave-plugin.toml"
    manifest.write_text(manifest.read_text().replace('["app.nodes"]', '["app.nodes", "elsewhere.nodes"]'))
    with pytest.raises(ManifestError, match=r"field 'modules'.*'elsewhere.nodes' of plugin app@1.0.0"):
        describe_runtime_env(open_plugin_dir(root))
    manifest.write_text(
        manifest.read_text()
        .replace(', "elsewhere.nodes"', "")
        .replace("requirements = []", 'requirements = ["wheels/gone-1.0-py3-none-any.whl"]')
    )
    with pytest.raises(ManifestError, match=r"wheel 'wheels/gone-1.0-py3-none-any.whl' of plugin app@1.0.0"):
        describe_runtime_env(open_plugin_dir(root))


def test_building_needs_a_connected_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(PluginEnvironmentError, match=r"app@1.0.0.*ensure_ray"):
        build_runtime_env(open_plugin_dir(write_plugin(tmp_path, "app", "1.0.0", CODE)))
