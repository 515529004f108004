"""The plugin manifest: `rayweave-plugin.toml`, or `[tool.rayweave.plugin]` in a plugin's `pyproject.toml`.

```toml
name = "acme"                       # plugin name: the `acme` of node type ids `acme/score@1`
version = "1.2.0"                   # semantic version; its major is the major of every node type id
description = "Scores things."
modules = ["acme_score.nodes"]      # modules whose `@node` definitions make up the plugin
types = "acme_score.types:register"  # optional: registers the plugin's types, validators and coercions
requirements = ["wheels/tinylib-1.0-py3-none-any.whl", "numpy>=1.26"]  # pip requirements, local wheels too
trust = "trusted"                   # or "untrusted": its nodes run in the sandbox (the admin may override)
[dependencies]                      # other plugins, with version ranges (PEP 440 specifiers)
acme-base = ">=1,<2"
[resources]                         # default resources of nodes that declare none
num_cpus = 1
[env]                               # environment variables of the plugin's workers
ACME_MODE = "fast"
```

Reading a manifest never imports plugin code. Errors name the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from nodes.errors import PolicyError
from nodes.plugins.errors import ManifestError
from nodes.policy import Resources

__all__ = [
    "MANIFEST_FILE",
    "PluginManifest",
    "PluginPackage",
    "find_manifest",
    "load_manifest",
    "open_plugin_dir",
    "parse_manifest",
]

MANIFEST_FILE = "rayweave-plugin.toml"
PYPROJECT_FILE = "pyproject.toml"
# Names the platform uses itself: a plugin called `builtin` would shadow the built-in library.
RESERVED_NAMES = frozenset({"builtin", "local", "rayweave"})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_HOOK = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

Origin = Literal["directory", "archive", "distribution", "installed"]


class PluginManifest(BaseModel):
    """The validated content of a plugin manifest (frozen)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        description="Plugin name: lowercase letters, digits, '-' and '_'; starts with a letter."
    )
    version: str = Field(description="Semantic version MAJOR.MINOR.PATCH[-pre][+build].")
    description: str = Field(default="", description="One line saying what the plugin is for.")
    modules: tuple[str, ...] = Field(min_length=1, description="Dotted names of the modules defining nodes.")
    types: str | None = Field(
        default=None,
        description=(
            "`module:function` called with a `typesys.TypeRegistry` to register the plugin's types, validators "
            "and coercions (inside the plugin's runtime environment); the module is in one of `modules`' "
            "top-level packages."
        ),
    )
    requirements: tuple[str, ...] = Field(
        default=(),
        description="pip requirements; a path ending in .whl is a wheel relative to the plugin root.",
    )
    dependencies: dict[str, str] = Field(
        default_factory=dict, description="Other plugins this one needs: name -> PEP 440 version range."
    )
    resources: dict[str, Any] = Field(default_factory=dict, description="Default resources of its nodes.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables of its workers.")
    trust: Literal["trusted", "untrusted"] = Field(
        default="trusted",
        description=(
            "`untrusted`: its nodes run in the sandbox (nodes.sandbox, docs/guides/sandbox.md); the admin's "
            "RAYWEAVE_TRUSTED_PLUGINS / RAYWEAVE_UNTRUSTED_PLUGINS override it."
        ),
    )

    @field_validator("trust")
    @classmethod
    def _check_trust(cls, value: str, info: ValidationInfo) -> str:
        if value == "untrusted" and info.data.get("types"):
            raise ValueError(
                "an untrusted plugin cannot have a 'types' hook: its validators and coercions would run outside "
                "the sandbox; remove 'types' (use built-in types) or ask the admin to trust the plugin"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_', starting with a letter (max 64)")
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved by rayweave; choose another name")
        return value

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError("must be a semantic version MAJOR.MINOR.PATCH, e.g. '1.0.0'")
        return value

    @field_validator("modules")
    @classmethod
    def _check_modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for module in value:
            if not _MODULE.match(module):
                raise ValueError(f"{module!r} is not a dotted module name like 'acme_score.nodes'")
        return value

    @field_validator("types")
    @classmethod
    def _check_types(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not _HOOK.match(value):
            raise ValueError(f"{value!r} is not a hook like 'acme_score.types:register' (module:function)")
        tops = {module.split(".", 1)[0] for module in info.data.get("modules", ())}
        top = value.split(".", 1)[0].split(":", 1)[0]
        if tops and top not in tops:
            raise ValueError(
                f"the module of {value!r} is not in the plugin's packages ({', '.join(sorted(tops))}); put it in "
                "one of the packages of 'modules', which are what the plugin's environment holds"
            )
        return value

    @field_validator("requirements")
    @classmethod
    def _check_requirements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if is_local_wheel(item):
                if Path(item).is_absolute() or ".." in Path(item).parts:
                    raise ValueError(f"wheel {item!r} must be a path inside the plugin directory")
                continue
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"{item!r} is not a pip requirement: {exc}") from None
        return value

    @field_validator("dependencies")
    @classmethod
    def _check_dependencies(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            if not _NAME.match(name):
                raise ValueError(f"dependency {name!r} is not a plugin name")
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise ValueError(
                    f"dependency {name!r}: {spec!r} is not a version range like '>=1,<2'"
                ) from None
        return value

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Resources.from_json(value)
        except (PolicyError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.startswith("RAYWEAVE_"):
                raise ValueError(f"{key!r}: variables starting with RAYWEAVE_ are set by rayweave itself")
        return value

    @property
    def ref(self) -> str:
        """`name@version`, the key of one plugin version everywhere (install records, runs, errors)."""
        return f"{self.name}@{self.version}"

    @property
    def major(self) -> int:
        """The major number of `version`: the `@major` of this plugin version's node type ids."""
        return int(self.version.split(".", 1)[0])

    @property
    def parsed_version(self) -> Version:
        """`version` as a `packaging` Version, for comparisons and ranges."""
        return Version(self.version)

    @property
    def default_resources(self) -> Resources:
        """`resources` as a `Resources` value."""
        return Resources.from_json(self.resources)

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON (what install records and index entries store)."""
        return self.model_dump(mode="json")


def is_local_wheel(requirement: str) -> bool:
    """Whether a requirement names a wheel file bundled with the plugin rather than a package on an index."""
    return requirement.endswith(".whl") and "://" not in requirement


@dataclass(frozen=True)
class PluginPackage:
    """One plugin version found on disk: its manifest, the directory holding its code, and where it came from."""

    manifest: PluginManifest
    root: Path
    manifest_path: Path
    origin: Origin = "directory"

    @property
    def name(self) -> str:
        """The plugin name."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """The plugin version."""
        return self.manifest.version

    @property
    def ref(self) -> str:
        """`name@version`."""
        return self.manifest.ref


def _format_errors(path: Path, error: ValidationError, prefix: str) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"field '{prefix}{field}': {message}")
    return f"{path}: invalid plugin manifest: " + "; ".join(parts)


def parse_manifest(data: dict[str, Any], path: Path, *, prefix: str = "") -> PluginManifest:
    """Validate manifest data read from `path` (used in error messages; `prefix` is the table, if any)."""
    try:
        return PluginManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_format_errors(path, exc, prefix)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the plugin manifest: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML ({exc}); fix the syntax") from None


def find_manifest(directory: Path) -> Path | None:
    """The manifest file of a plugin directory: `rayweave-plugin.toml`, or a pyproject with the plugin table."""
    candidate = directory / MANIFEST_FILE
    if candidate.is_file():
        return candidate
    pyproject = directory / PYPROJECT_FILE
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if isinstance(data.get("tool", {}).get("rayweave", {}).get("plugin"), dict):
            return pyproject
    return None


def load_manifest(path: Path) -> PluginManifest:
    """Read and validate a manifest file (`rayweave-plugin.toml` or a `pyproject.toml`), or a plugin directory's."""
    path = Path(path)
    if path.is_dir():
        found = find_manifest(path)
        if found is None:
            raise ManifestError(
                f"{path}: no plugin manifest; add {MANIFEST_FILE} or a [tool.rayweave.plugin] table to "
                f"{PYPROJECT_FILE} (`rayweave plugins new NAME` writes one)"
            )
        path = found
    data = _read_toml(path)
    if path.name != PYPROJECT_FILE:
        return parse_manifest(data, path)
    table = data.get("tool", {}).get("rayweave", {}).get("plugin")
    if not isinstance(table, dict):
        raise ManifestError(
            f"{path}: no [tool.rayweave.plugin] table; add one with name, version and modules"
        )
    # name, version and description may come from the [project] table rather than being written twice.
    project = data.get("project", {})
    merged = dict(table)
    for key in ("name", "version", "description"):
        if key not in merged and isinstance(project.get(key), str):
            merged[key] = project[key]
    return parse_manifest(merged, path, prefix="tool.rayweave.plugin.")


def open_plugin_dir(directory: Path, *, origin: Origin = "directory") -> PluginPackage:
    """The plugin in `directory` (its manifest read and validated; no plugin code imported)."""
    directory = Path(directory).resolve()
    manifest_path = find_manifest(directory) or directory / MANIFEST_FILE
    manifest = load_manifest(directory)
    return PluginPackage(manifest=manifest, root=directory, manifest_path=manifest_path, origin=origin)
