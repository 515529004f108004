"""Plugin node definitions that only ever run inside their plugin's Ray runtime environment.

The caller never imports plugin code. `read_plugin_definitions` runs a Ray task inside the plugin version's
runtime environment; the task imports the plugin's modules, collects their `@node` definitions and returns
their specs as JSON. From that JSON the caller builds `PluginNodeDefinition`s: a real `NodeSpec` (types parsed
back with typesys), the `runtime_env` to run with, and an `invoke` that imports the node's module lazily —
inside the worker, where the engine calls it.

Within a plugin, a node type's `plugin` and `version` are the plugin's (`acme/score@2` comes from acme 2.x),
so two versions of a plugin give distinct node type ids that coexist in one catalog.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import typesys
from nodes.definition import NodeDefinition
from nodes.plugins.errors import PluginEnvironmentError, PluginImportError
from nodes.plugins.manifest import PluginPackage
from nodes.plugins.runtime import PLUGIN_ENV_VAR
from nodes.plugins.types import PluginTypes, types_from_json
from nodes.policy import Resources, RetryPolicy
from nodes.ray_options import task_options
from nodes.signature import OutputLayout
from nodes.spec import NodeSpec, ParamSpec, PortSpec

__all__ = [
    "PluginNodeDefinition",
    "collect_specs",
    "definitions_from_catalog_json",
    "read_plugin_definitions",
    "spec_from_json",
]


def _port(data: Mapping[str, Any]) -> PortSpec:
    return PortSpec(
        name=data["name"],
        type=typesys.from_json(data["type_json"]),
        required=data["required"],
        default=data.get("default"),
        description=data.get("description", ""),
    )


def _param(data: Mapping[str, Any]) -> ParamSpec:
    return ParamSpec(
        name=data["name"],
        type=typesys.from_json(data["type_json"]),
        required=data["required"],
        default=data.get("default"),
        description=data.get("description", ""),
    )


def spec_from_json(data: Mapping[str, Any]) -> NodeSpec:
    """Rebuild a `NodeSpec` from `NodeSpec.to_json()` (types through `typesys.from_json`)."""
    return NodeSpec(
        plugin=data["plugin"],
        name=data["name"],
        version=data["version"],
        description=data.get("description", ""),
        inputs=tuple(_port(p) for p in data.get("inputs", ())),
        outputs=tuple(_port(p) for p in data.get("outputs", ())),
        params=tuple(_param(p) for p in data.get("params", ())),
        retry=RetryPolicy.from_json(data.get("retry", {})),
        timeout_s=data.get("timeout_s"),
        cache=data.get("cache", True),
        deterministic=data.get("deterministic", True),
        resources=Resources.from_json(data.get("resources", {})),
        category=data.get("category"),
        tags=tuple(data.get("tags", ())),
        code_version=data.get("code_version", ""),
        kind=data.get("kind", "function"),
        accepts_skipped=data.get("accepts_skipped", False),
        control=data.get("control"),
        cheap=data.get("cheap", False),
        io_bound=data.get("io_bound", False),
    )


def _not_here(
    *args: Any, **kwargs: Any
) -> Any:  # pragma: no cover - replaced by PluginNodeDefinition.__call__
    raise PluginEnvironmentError("plugin nodes run inside their plugin's runtime environment only")


def _rebuild_plugin_definition(
    spec: NodeSpec,
    module: str,
    attribute: str,
    runtime_env: dict[str, Any],
    plugin_ref: str,
    example: str,
    trust: str = "trusted",
) -> PluginNodeDefinition:
    return PluginNodeDefinition(
        spec,
        module=module,
        attribute=attribute,
        runtime_env=runtime_env,
        plugin_ref=plugin_ref,
        example=example,
        trust=trust,
    )


class PluginNodeDefinition(NodeDefinition):
    """A node type of a plugin version: `.spec`, `.runtime_env` and a lazy `.invoke`.

    `invoke` (and `new_instance` for class nodes) import the node's module on first use, inside the worker;
    called anywhere but in the plugin version's runtime environment they raise `PluginEnvironmentError`
    rather than import whatever version of the code happens to be on the path. Pickled by value (spec,
    module, attribute, runtime env): it is what the engine ships to the Ray task.
    """

    def __init__(
        self,
        spec: NodeSpec,
        *,
        module: str,
        attribute: str,
        runtime_env: dict[str, Any],
        plugin_ref: str,
        example: str = "",
        trust: str = "trusted",
    ) -> None:
        layout = OutputLayout(mode="mapping", names=tuple(p.name for p in spec.outputs))
        super().__init__(_not_here, spec, layout)
        self.module_name = module
        self.attribute = attribute
        self.runtime_env = runtime_env
        self.plugin_ref = plugin_ref
        self.example = example
        #: The manifest's `trust`; the run's `SandboxPolicy` may override it (`nodes.sandbox.sandboxed`).
        self.trust = trust
        self.__module__ = module
        self.__name__ = self.__qualname__ = attribute
        self.__doc__ = spec.description
        self._resolved: NodeDefinition | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_plugin_definition,
            (
                self.spec,
                self.module_name,
                self.attribute,
                self.runtime_env,
                self.plugin_ref,
                self.example,
                self.trust,
            ),
        )

    def __repr__(self) -> str:
        return f"<PluginNodeDefinition {self.spec.id} from {self.plugin_ref} ({self.module_name}.{self.attribute})>"

    def ray_options(self) -> dict[str, Any]:
        """Ray task options of this node: its resources and its plugin version's runtime environment."""
        return task_options(self.spec.resources, runtime_env=self.runtime_env)

    def _check_here(self) -> None:
        """`PluginEnvironmentError` unless this process is in the plugin version's runtime environment."""
        here = os.environ.get(PLUGIN_ENV_VAR)
        if here != self.plugin_ref:
            where = f"the runtime environment of {here}" if here else "a process without a plugin environment"
            raise PluginEnvironmentError(
                f"node {self.spec.id} of plugin {self.plugin_ref} was called in {where}; run it as a Ray task "
                f"with runtime_env=definition.runtime_env (the engine does this from the plan's ray_options)"
            )

    def resolve(self) -> NodeDefinition:
        """The plugin's own definition, imported in this worker (only inside the plugin's runtime env)."""
        if self._resolved is not None:
            return self._resolved
        self._check_here()
        try:
            module = importlib.import_module(self.module_name)
        except Exception as exc:
            raise PluginImportError(
                f"plugin {self.plugin_ref}: module {self.module_name!r} (node {self.spec.id}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        found = getattr(module, self.attribute, None)
        if not isinstance(found, NodeDefinition):
            raise PluginImportError(
                f"plugin {self.plugin_ref}: {self.module_name}.{self.attribute} is no longer a @node definition "
                f"(node {self.spec.id}); reinstall the plugin version"
            )
        self._resolved = found
        return found

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the plugin's function directly (inside the plugin's runtime environment only)."""
        return self.resolve()(*args, **kwargs)

    def new_instance(self) -> Any:
        """For class nodes: construct the plugin's class and call its `setup()` (inside its environment).

        None for a sandboxed node (`nodes.sandbox`): its instance is made in the jail of each call."""
        from nodes import context, sandbox

        if sandbox.sandboxed(self, context.current().policy):
            return None
        return self.resolve().new_instance()

    def invoke(
        self, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, instance: Any = None
    ) -> dict[str, Any]:
        """Run the node once inside the plugin's runtime environment; one entry per output port.

        A node of a plugin the current context's policy does not trust runs in the sandbox
        (`nodes.sandbox.invoke`), wherever it is called from."""
        from nodes import context, sandbox

        policy = context.current().policy
        if sandbox.sandboxed(self, policy):
            self._check_here()  # the jail is made from this process's environment: it must be the plugin's
            return sandbox.invoke(self, inputs, params, policy)
        return self.resolve().invoke(inputs, params, instance=instance)


def collect_specs(plugin_ref: str, modules: Sequence[str], types_hook: str | None = None) -> dict[str, Any]:
    """Import `modules` and return the JSON of every `@node` definition they define, and the import errors;
    with `types_hook`, also what the plugin's types hook registers (`nodes.plugins.types.collect_types`).

    Runs inside the plugin's runtime environment (as a Ray task). A module that fails to import is reported
    with its traceback, not raised, so the caller can name plugin, module and cause.
    """
    nodes: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except BaseException as exc:  # an import may raise anything, SystemExit included
            errors.append(
                {"module": name, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            )
            continue
        for attribute, value in sorted(vars(module).items()):
            # Only definitions made in this module: re-exported ones belong to the module that defines them.
            if isinstance(value, NodeDefinition) and getattr(value.target, "__module__", None) == name:
                nodes.append(
                    {
                        "module": name,
                        "attribute": attribute,
                        "spec": value.spec.to_json(),
                        "example": value.example,
                    }
                )
    found: dict[str, Any] = {"plugin": plugin_ref, "nodes": nodes, "errors": errors}
    if types_hook:
        from nodes.plugins.types import collect_types

        found["types"] = collect_types(types_hook)
    return found


def _collect_sandboxed(
    plugin_ref: str, modules: Sequence[str], types_hook: str | None = None
) -> dict[str, Any]:
    """`collect_specs` in the sandbox, with its default limits (an untrusted plugin's catalog read)."""
    from nodes.sandbox import SandboxPolicy
    from nodes.sandbox.jail import collect_in_jail

    return collect_in_jail(plugin_ref, list(modules), types_hook, SandboxPolicy())


def _plugin_spec(spec: NodeSpec, package: PluginPackage) -> NodeSpec:
    manifest = package.manifest
    code_version = hashlib.sha256(f"{spec.code_version}|{manifest.ref}".encode()).hexdigest()[:16]
    resources = spec.resources if spec.resources.to_json() else manifest.default_resources
    # `cheap` is kept: the optimizer fuses cheap nodes into one Ray task only with nodes of the same runtime
    # environment, and the fused task runs in it (engine.compile.optimize.fusion_groups).
    return replace(
        spec,
        plugin=manifest.name,
        version=manifest.version,
        code_version=code_version,
        resources=resources,
    )


def definitions_from_catalog_json(
    package: PluginPackage, runtime_env: dict[str, Any], data: Mapping[str, Any]
) -> list[PluginNodeDefinition]:
    """Build the definitions of a plugin version from what `collect_specs` returned.

    Raises `PluginImportError` naming the plugin, the module and the cause when a module failed to import.
    """
    if data.get("errors"):
        first = data["errors"][0]
        others = [e["module"] for e in data["errors"][1:]]
        more = f" (and also {', '.join(others)})" if others else ""
        raise PluginImportError(
            f"plugin {package.ref}: module {first['module']!r} failed to import in the plugin's runtime "
            f"environment: {first['error']}{more}; fix the module or its requirements in {package.manifest_path}\n"
            f"{first['traceback']}"
        )
    definitions = []
    for item in data["nodes"]:
        spec = _plugin_spec(spec_from_json(item["spec"]), package)
        definitions.append(
            PluginNodeDefinition(
                spec,
                module=item["module"],
                attribute=item["attribute"],
                runtime_env=runtime_env,
                plugin_ref=package.ref,
                example=item.get("example", ""),
                trust=package.manifest.trust,
            )
        )
    return definitions


def read_plugin_definitions(
    package: PluginPackage, runtime_env: dict[str, Any], *, timeout_s: float = 600.0
) -> list[PluginNodeDefinition]:
    """Read a plugin version's node definitions by importing its modules in a Ray task in its runtime env.

    Raises `PluginImportError` (a module failed to import) or `PluginEnvironmentError` (the environment could
    not be built, e.g. a requirement failed to install, or it timed out).
    """
    return submit_read(package, runtime_env).result(timeout_s)


class PendingRead:
    """A catalog read in flight (see `submit_read`), so several plugins' environments build in parallel."""

    def __init__(self, package: PluginPackage, runtime_env: dict[str, Any], ref: Any) -> None:
        self.package = package
        self.runtime_env = runtime_env
        self.ref = ref
        #: After `result()`: what the plugin's types hook registered (None without a hook).
        self.types: PluginTypes | None = None

    def result(self, timeout_s: float = 600.0) -> list[PluginNodeDefinition]:
        """The definitions, or the `PluginImportError`/`PluginEnvironmentError` of this plugin version."""
        import ray

        try:
            data = ray.get(self.ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(self.ref, force=True)
            raise PluginEnvironmentError(
                f"plugin {self.package.ref}: reading its nodes did not finish within {timeout_s} s (building its "
                f"runtime environment may still be running); try again, or check its requirements"
            ) from None
        except ray.exceptions.RuntimeEnvSetupError as exc:
            raise PluginEnvironmentError(
                f"plugin {self.package.ref}: its Ray runtime environment could not be built; check the "
                f"requirements in {self.package.manifest_path}. Ray said: {exc}"
            ) from None
        except ray.exceptions.RayError as exc:
            raise PluginEnvironmentError(
                f"plugin {self.package.ref}: reading its nodes failed in its runtime environment: {exc}"
            ) from None
        definitions = definitions_from_catalog_json(self.package, self.runtime_env, data)
        self.types = types_from_json(self.package.ref, data.get("types"), self.package.manifest_path)
        return definitions


def submit_read(
    package: PluginPackage, runtime_env: dict[str, Any], *, trust: str | None = None
) -> PendingRead:
    """Start reading a plugin version's node definitions in a Ray task; `.result()` waits for them. `trust`
    is the plugin's effective trust (default: the admin's settings in this process's environment over its
    manifest, `SandboxPolicy.from_environment`)."""
    import ray

    if trust is None:
        from nodes.sandbox.policy import SandboxPolicy

        trust = SandboxPolicy.from_environment().trust_of(package.name, package.manifest.trust)
    # An untrusted plugin's modules are imported in the sandbox (`nodes.sandbox`): importing runs their code.
    task: Any = ray.remote(collect_specs if trust == "trusted" else _collect_sandboxed)
    options = task_options(Resources(num_cpus=0), system_retries=0, runtime_env=runtime_env)
    ref = task.options(**options).remote(package.ref, list(package.manifest.modules), package.manifest.types)
    return PendingRead(package, runtime_env, ref)
