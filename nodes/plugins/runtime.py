"""The Ray runtime environment of a plugin version: its code, its requirements and its environment variables.

`describe_runtime_env` says what goes in (local paths, pure); `build_runtime_env` uploads the local parts to the
Ray cluster and returns the dict to pass as the `runtime_env` Ray option:

- the plugin's top-level modules (and those of the plugins it depends on) as `py_modules`, uploaded to the
  cluster's GCS, so every node of the cluster gets them and the caller never imports them;
- wheels bundled with the plugin (requirements ending in `.whl`) as `py_modules` too: Ray uploads them and
  installs them per environment, which needs no package index and works on a multi-node cluster;
- other requirements as `pip` (a per-environment virtualenv that still sees the base environment), except
  those the base environment satisfies already (`satisfied_by_base`): a plugin whose requirements are all
  installed at matching versions gets no `pip` field, so Ray builds no virtualenv for it;
- `env_vars`: the manifest's `env` plus `RAYWEAVE_PLUGIN=name@version`, which plugin node definitions check
  so that plugin code never runs outside its environment, and `RAYWEAVE_PLUGIN_CODE`, the versions whose code
  the environment holds (the plugin and its dependencies), which plugins' type validators and coercions check.

Ray keys worker processes by runtime environment, so two plugins, or two versions of one, never share a worker.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes.plugins.errors import ManifestError, PluginEnvironmentError
from nodes.plugins.manifest import PluginPackage, is_local_wheel

__all__ = [
    "PIN_SECONDS",
    "PLUGIN_CODE_VAR",
    "PLUGIN_ENV_VAR",
    "build_runtime_env",
    "code_paths",
    "describe_runtime_env",
    "pin",
    "satisfied_by_base",
]

PLUGIN_ENV_VAR = "RAYWEAVE_PLUGIN"
#: The plugin versions (`name@version`, comma-separated) whose code a plugin's environment holds.
PLUGIN_CODE_VAR = "RAYWEAVE_PLUGIN_CODE"
# Ray deletes an uploaded package once nothing references it; a job-level env is referenced by its job, but a
# per-task env only by a temporary pin (10 minutes by default). Plugin packages are pinned for a week, and
# re-pinned whenever a plugin is (re)loaded, so a server can run a plugin node long after loading it.
PIN_SECONDS = 7 * 24 * 3600
_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]


def code_paths(package: PluginPackage) -> list[Path]:
    """The local directories (or single `.py` files) holding the plugin's top-level modules."""
    paths: list[Path] = []
    for module in package.manifest.modules:
        top = module.split(".", 1)[0]
        directory, single = package.root / top, package.root / f"{top}.py"
        if directory.is_dir():
            path = directory
        elif single.is_file() and "." not in module:
            path = single
        else:
            raise ManifestError(
                f"{package.manifest_path}: field 'modules': module {module!r} of plugin {package.ref} is not "
                f"in {package.root} (expected a package directory {top}/ or a file {top}.py)"
            )
        if path not in paths:
            paths.append(path)
    return paths


def _wheels(package: PluginPackage) -> list[Path]:
    wheels = []
    for requirement in package.manifest.requirements:
        if is_local_wheel(requirement):
            wheel = package.root / requirement
            if not wheel.is_file():
                raise ManifestError(
                    f"{package.manifest_path}: field 'requirements': wheel {requirement!r} of plugin "
                    f"{package.ref} does not exist in {package.root}"
                )
            wheels.append(wheel)
    return wheels


def satisfied_by_base(requirement: str) -> bool:
    """Whether the environment this process runs in satisfies the pip `requirement` already.

    True when it is a plain `name<specifiers>` requirement (no extras, no URL) whose distribution is installed
    at a version its specifiers allow (local version labels such as `+cpu` are ignored, as PEP 440 says), or
    whose environment marker excludes this interpreter. Anything else (not installed, another version, a URL,
    extras, an unparsable line) is False: pip gets it.
    """
    import importlib.metadata

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return False
    if parsed.marker is not None and not parsed.marker.evaluate():
        return True
    if parsed.url or parsed.extras:
        return False
    try:
        installed = importlib.metadata.version(parsed.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return parsed.specifier.contains(installed, prereleases=True)


def describe_runtime_env(
    package: PluginPackage, dependencies: Sequence[PluginPackage] = (), *, reuse_installed: bool = True
) -> dict[str, Any]:
    """The runtime environment with local paths (not yet uploaded): `py_modules`, `pip`, `env_vars`.

    `dependencies` are the plugin versions it depends on (resolved, see `nodes.plugins.resolve`); their code,
    wheels and requirements join the environment, and their env vars unless the plugin sets the same ones.
    `reuse_installed`: leave out of `pip` the requirements this process's environment satisfies already
    (`satisfied_by_base`; Ray's workers run in that same base environment, so they see those packages).
    """
    py_modules: list[str] = []
    pip: list[str] = []
    env_vars: dict[str, str] = {}
    for member in [*dependencies, package]:
        for path in [*code_paths(member), *_wheels(member)]:
            if str(path) not in py_modules:
                py_modules.append(str(path))
        for requirement in member.manifest.requirements:
            if is_local_wheel(requirement) or requirement in pip:
                continue
            if not (reuse_installed and satisfied_by_base(requirement)):
                pip.append(requirement)
        env_vars.update(member.manifest.env)
    env_vars[PLUGIN_ENV_VAR] = package.ref
    env_vars[PLUGIN_CODE_VAR] = ",".join(member.ref for member in [*dependencies, package])
    env: dict[str, Any] = {"py_modules": py_modules, "env_vars": env_vars}
    if pip:
        # pip_check off: the environment inherits the base one, whose pins are not the plugin's business.
        env["pip"] = {"packages": pip, "pip_check": False}
    return env


def _upload(path: Path, scratch_dir: str) -> str:
    """Upload one py_modules entry (a package directory, a `.py` file or a wheel) and return its gcs:// URI."""
    # Private Ray API: ray.init(runtime_env=...) uses the same functions to turn local py_modules into URIs;
    # per-task runtime envs accept URIs only.
    from ray._private.runtime_env import packaging

    if path.suffix == ".whl" or path.is_file():
        from ray._private.runtime_env.py_modules import upload_py_modules_if_needed

        uploaded = upload_py_modules_if_needed(
            {"py_modules": [str(path)]}, include_gitignore=False, scratch_dir=scratch_dir
        )
        return str(uploaded["py_modules"][0])
    content = packaging.get_uri_for_directory(str(path), include_gitignore=False, excludes=_EXCLUDES)
    # Ray's directory hash covers the files but not the directory's own name, which is the package name: two
    # plugins whose packages have identical files (a scaffold, a fork) would share one upload and one of them
    # would import under the other's name. The name goes into the URI.
    digest = hashlib.sha1(f"{path.name}|{content}".encode()).hexdigest()
    uri = f"gcs://_ray_pkg_{digest}.zip"
    packaging.upload_package_if_needed(
        uri, scratch_dir, str(path), include_gitignore=False, include_parent_dir=True, excludes=_EXCLUDES
    )
    return uri


def pin(runtime_env: dict[str, Any], expiration_s: int = PIN_SECONDS) -> None:
    """Keep the uploaded packages of a runtime environment in the cluster for `expiration_s` more seconds."""
    from ray._private.runtime_env import packaging

    for uri in runtime_env.get("py_modules", ()):
        packaging.pin_runtime_env_uri(uri, expiration_s=expiration_s)


def build_runtime_env(
    package: PluginPackage, dependencies: Sequence[PluginPackage] = (), *, scratch_dir: Path | None = None
) -> dict[str, Any]:
    """The runtime environment to pass to Ray, with the plugin's code and wheels uploaded to the cluster.

    Needs a connected Ray (`ray.is_initialized()`). Uploads are content-addressed: an unchanged plugin is not
    uploaded twice, and runs that started with a version keep it even after the version is removed from disk.
    Bundled wheels are keyed by their file name (Ray's rule): a wheel's name and version must change with
    its content.
    """
    import ray

    if not ray.is_initialized():
        raise PluginEnvironmentError(
            f"plugin {package.ref}: building its runtime environment needs a connected Ray; call "
            f"cluster.ray_runtime.ensure_ray(settings) first"
        )
    env = describe_runtime_env(package, dependencies)
    with tempfile.TemporaryDirectory(prefix="rayweave-upload-") as scratch:
        try:
            env["py_modules"] = [_upload(Path(p), str(scratch_dir or scratch)) for p in env["py_modules"]]
            pin(env)
        except Exception as exc:  # Ray raises RuntimeEnvSetupError, ValueError or OSError here
            raise PluginEnvironmentError(
                f"plugin {package.ref}: uploading its code to the Ray cluster failed: {exc}"
            ) from exc
    return env
