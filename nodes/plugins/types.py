"""Types, validators and coercions of plugins: registered by a hook in the plugin's package, known everywhere,
run only where the plugin's code is.

A plugin names a hook in its manifest (`types = "acme.types:register"`): a function that receives a
`typesys.TypeRegistry` and registers nominal types, validators and coercion rules on it. The hook runs inside
the plugin's runtime environment, in the same Ray task that reads the plugin's nodes (`collect_types`), and
what it registered comes back as JSON. From it `PluginTypes.apply` registers the same types and rules in a
catalog's registry, so the compiler knows them (type names in workflow documents, subtyping, coercions)
without importing plugin code. Their functions are stand-ins:

- `PluginValidator` runs the plugin's validator where the plugin's code is (`RAYWEAVE_PLUGIN_CODE` names the
  plugin: its own nodes' workers and those of plugins depending on it) and accepts the value elsewhere, where
  the value was checked against the type's parent only;
- `PluginConversion` performs the plugin's coercion where its code is and fails elsewhere with a message saying
  so (an implicit coercion runs in the task of the node receiving the value).

Explicit coercions need no stand-in at run time: their conversion node, a node of the plugin, does the work.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import typesys
from nodes.plugins.errors import PluginEnvironmentError, PluginImportError
from nodes.plugins.runtime import PLUGIN_CODE_VAR, PLUGIN_ENV_VAR

__all__ = ["PluginConversion", "PluginTypes", "PluginValidator", "collect_types", "plugin_code_here"]


def plugin_code_here(plugin_ref: str) -> bool:
    """Whether this process runs in an environment holding the code of plugin version `plugin_ref`."""
    if os.environ.get(PLUGIN_ENV_VAR) == plugin_ref:
        return True
    return plugin_ref in os.environ.get(PLUGIN_CODE_VAR, "").split(",")


def _hook(hook: str) -> Callable[[typesys.TypeRegistry], Any]:
    module_name, _, attribute = hook.partition(":")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise TypeError(f"{hook} is not a function taking a typesys.TypeRegistry")
    return function  # type: ignore[no-any-return]


def run_hook(hook: str) -> typesys.TypeRegistry:
    """A new empty registry filled by the plugin's hook (call it only where the plugin's code is)."""
    registry = typesys.TypeRegistry()
    _hook(hook)(registry)
    return registry


def collect_types(hook: str) -> dict[str, Any]:
    """Run the hook in a new registry and return what it registered as JSON (inside the plugin's environment).

    A hook that fails is reported as `{"error": ..., "traceback": ...}`, not raised, so the caller can name the
    plugin and the cause.
    """
    try:
        registry = run_hook(hook)
    except BaseException as exc:  # plugin code may raise anything
        return {"hook": hook, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    nominal = {t.name for t in registry.nominal_types()}
    return {
        "hook": hook,
        "types": [
            {
                "name": t.name,
                "parent": typesys.to_json(t.parent),
                "description": registry.description(t.name),
                "validator": registry.validator(t) is not None,
            }
            for t in registry.nominal_types()
        ],
        # Validators of types the hook did not declare itself (e.g. `Model[flavor]`, another plugin's type).
        "validators": [
            typesys.to_json(t)
            for t in registry.validators()
            if not (isinstance(t, typesys.NominalType) and t.name in nominal)
        ],
        "coercions": [
            {
                "index": index,
                "source": typesys.to_json(rule.source),
                "target": typesys.to_json(rule.target),
                "kind": rule.kind,
                "cost": rule.cost,
                "node": rule.node,
                "description": rule.description,
            }
            for index, rule in enumerate(registry.coercions())
        ],
    }


class _Stand:
    """What the stand-ins share: the plugin version and its hook, and the registry the hook fills here (made on
    first use inside an environment holding the plugin's code; never pickled)."""

    def __init__(self, plugin_ref: str, hook: str) -> None:
        self.plugin_ref = plugin_ref
        self.hook = hook
        self._registry: typesys.TypeRegistry | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"plugin_ref": self.plugin_ref, "hook": self.hook, "_registry": None}

    def registry(self) -> typesys.TypeRegistry:
        if self._registry is None:
            try:
                self._registry = run_hook(self.hook)
            except Exception as exc:
                raise PluginImportError(
                    f"plugin {self.plugin_ref}: its types hook {self.hook} failed: {type(exc).__name__}: {exc}"
                ) from exc
        return self._registry


class PluginValidator(_Stand):
    """The validator of a plugin's type `type_json` (see the module docstring)."""

    def __init__(self, plugin_ref: str, hook: str, type_json: Mapping[str, Any]) -> None:
        super().__init__(plugin_ref, hook)
        self.type_json = dict(type_json)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "type_json": self.type_json}

    def __repr__(self) -> str:
        return f"<validator of {typesys.from_json(self.type_json)} from plugin {self.plugin_ref}>"

    def __call__(self, value: Any) -> bool | None:
        """The plugin's verdict on `value` where its code is; None (accepted) elsewhere."""
        if not plugin_code_here(self.plugin_ref):
            return None
        validator = self.registry().validator(typesys.from_json(self.type_json))
        return None if validator is None else validator(value)


class PluginConversion(_Stand):
    """The conversion function of the `index`-th coercion rule a plugin's hook registers."""

    def __init__(self, plugin_ref: str, hook: str, index: int, source: str, target: str) -> None:
        super().__init__(plugin_ref, hook)
        self.index = index
        self.source = source
        self.target = target

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "index": self.index, "source": self.source, "target": self.target}

    def __repr__(self) -> str:
        return f"<coercion {self.source} -> {self.target} from plugin {self.plugin_ref}>"

    def __call__(self, value: Any) -> Any:
        """`value` converted by the plugin's rule (only where the plugin's code is)."""
        if not plugin_code_here(self.plugin_ref):
            raise PluginEnvironmentError(
                f"the coercion {self.source} -> {self.target} of plugin {self.plugin_ref} runs only where the "
                "plugin's code is (in its nodes' tasks, or those of plugins depending on it); connect the value "
                "to a node of that plugin, or convert it with one of its nodes first"
            )
        rules = self.registry().coercions()
        if self.index >= len(rules):
            raise PluginImportError(
                f"plugin {self.plugin_ref}: its types hook {self.hook} no longer registers the coercion "
                f"{self.source} -> {self.target}; reinstall the plugin version"
            )
        return rules[self.index].convert(value)


@dataclass(frozen=True)
class PluginTypes:
    """What a plugin version's types hook registered (the JSON of `collect_types`), ready to apply."""

    plugin_ref: str
    hook: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the plugin's nominal types."""
        return tuple(str(t["name"]) for t in self.data.get("types", ()))

    def conflict(self, registry: typesys.TypeRegistry) -> str | None:
        """Why the types cannot join `registry` (a name registered there with another parent), or None."""
        for item in self.data.get("types", ()):
            existing = registry.nominal(item["name"])
            parent = typesys.from_json(item["parent"])
            if existing is not None and existing.parent != parent:
                return (
                    f"plugin {self.plugin_ref} registers type {item['name']!r} with parent {parent}, but it is "
                    f"already registered with parent {existing.parent}; rename one of them"
                )
        return None

    def apply(self, registry: typesys.TypeRegistry) -> None:
        """Register the plugin's types, validators and coercions in `registry` (stand-ins for its functions).

        Raises `ValueError` when a type name is already registered with another parent (see `conflict`)."""
        problem = self.conflict(registry)
        if problem is not None:
            raise ValueError(problem)
        for item in self.data.get("types", ()):
            t = typesys.NominalType(item["name"], typesys.from_json(item["parent"]))
            validator = (
                PluginValidator(self.plugin_ref, self.hook, typesys.to_json(t)) if item["validator"] else None
            )
            registry.register_type(
                t.name, t.parent, validator=validator, description=item.get("description", "")
            )
        for type_json in self.data.get("validators", ()):
            registry.add_validator(
                typesys.from_json(type_json), PluginValidator(self.plugin_ref, self.hook, type_json)
            )
        for rule in self.data.get("coercions", ()):
            source, target = typesys.from_json(rule["source"]), typesys.from_json(rule["target"])
            registry.add_coercion(
                source,
                target,
                PluginConversion(self.plugin_ref, self.hook, int(rule["index"]), str(source), str(target)),
                kind=rule["kind"],
                cost=float(rule["cost"]),
                node=rule.get("node"),
                description=rule.get("description") or f"from plugin {self.plugin_ref}",
            )


def types_from_json(
    plugin_ref: str, data: Mapping[str, Any] | None, manifest_path: Any
) -> PluginTypes | None:
    """The `PluginTypes` of what `collect_types` returned (None when the plugin has no hook); raises
    `PluginImportError` naming the plugin, the hook and the cause when the hook failed."""
    if not data:
        return None
    if data.get("error"):
        raise PluginImportError(
            f"plugin {plugin_ref}: its types hook {data['hook']} failed in the plugin's runtime environment: "
            f"{data['error']}; fix the hook (field 'types' of {manifest_path})\n{data.get('traceback', '')}"
        )
    return PluginTypes(plugin_ref, str(data["hook"]), dict(data))
