"""Plugin manifests: both file forms are read, and every invalid field is reported with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.plugins import ManifestError, load_manifest, open_plugin_dir
from nodes.policy import Resources

GOOD = """
name = "acme"
version = "1.2.0"
description = "Scores things."
modules = ["acme_score.nodes"]
requirements = ["wheels/tinylib-1.0.0-py3-none-any.whl", "numpy>=1.26"]
[dependencies]
acme-base = ">=1,<2"
[resources]
num_cpus = 1
[env]
ACME_MODE = "fast"
"""


def test_reads_every_field_of_a_plugin_manifest(tmp_path: Path) -> None:
    (tmp_path / "rayweave-plugin.toml").write_text(GOOD)
    manifest = load_manifest(tmp_path)
    assert manifest.ref == "acme@1.2.0" and manifest.major == 1
    assert manifest.modules == ("acme_score.nodes",)
    assert manifest.dependencies == {"acme-base": ">=1,<2"}
    assert manifest.default_resources == Resources(num_cpus=1)
    assert manifest.env == {"ACME_MODE": "fast"}


def test_reads_the_pyproject_table_with_name_and_version_from_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "acme"\nversion = "2.0.0"\n\n[tool.rayweave.plugin]\nmodules = ["acme_score"]\n'
    )
    package = open_plugin_dir(tmp_path)
    assert package.ref == "acme@2.0.0"
    assert package.manifest_path.name == "pyproject.toml"


@pytest.mark.parametrize(
    ("line", "field", "hint"),
    [
        ('version = "1.2"', "version", "semantic version"),
        ('name = "Acme!"', "name", "lowercase"),
        ('name = "builtin"', "name", "reserved"),
        ('modules = ["acme score"]', "modules", "dotted module name"),
        ('requirements = ["numpy>>=1"]', "requirements", "not a pip requirement"),
        ('requirements = ["../evil.whl"]', "requirements", "inside the plugin directory"),
    ],
)
def test_an_invalid_field_is_named_with_the_file(tmp_path: Path, line: str, field: str, hint: str) -> None:
    key = line.split(" ", 1)[0]
    text = "\n".join(item for item in GOOD.splitlines() if not item.startswith(f"{key} ="))
    (tmp_path / "rayweave-plugin.toml").write_text(line + "\n" + text)
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "rayweave-plugin.toml") in message
    assert f"field '{field}" in message and hint in message


def test_bad_dependency_range_and_reserved_env_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rayweave-plugin.toml"
    path.write_text(GOOD.replace('">=1,<2"', '"about two"'))
    with pytest.raises(ManifestError, match=r"field 'dependencies'.*acme-base"):
        load_manifest(path)
    path.write_text(GOOD.replace("ACME_MODE", "RAYWEAVE_HOME"))
    with pytest.raises(ManifestError, match=r"field 'env'.*RAYWEAVE_HOME"):
        load_manifest(path)


def test_missing_fields_and_unknown_fields_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "rayweave-plugin.toml"
    path.write_text('name = "acme"\nversion = "1.0.0"\nmodule = ["x"]\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert "field 'modules'" in str(info.value) and "field 'module'" in str(info.value)


def test_pyproject_errors_name_the_plugin_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rayweave.plugin]\nname = "acme"\nversion = "x"\nmodules = ["a"]\n'
    )
    with pytest.raises(ManifestError, match=r"pyproject.toml.*field 'tool.rayweave.plugin.version'"):
        load_manifest(tmp_path)


def test_a_directory_without_manifest_and_broken_toml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="rayweave plugins new"):
        load_manifest(tmp_path)
    (tmp_path / "rayweave-plugin.toml").write_text("name = ")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(tmp_path)
