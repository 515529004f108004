"""Run a plugin's nodes from pytest inside the plugin's own Ray runtime environment.

```python
from nodes.plugins.testing import load_plugin, run_plugin_node

def test_greet_in_its_environment(ray_session):
    nodes = load_plugin("path/to/my-plugin")
    result = run_plugin_node(nodes["my-plugin/greet@0"], inputs={"name": "Ada"})
    assert result.value == "Hello, Ada!"
```

`run_plugin_node` runs `nodes.testing.run_node` (type checks, skip rule, recorded events) in a Ray task whose
`runtime_env` is the plugin version's, so the node sees the plugin's own requirements, exactly as in a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nodes.plugins.manifest import open_plugin_dir
from nodes.plugins.remote import PluginNodeDefinition
from nodes.ray_options import task_options

__all__ = ["load_plugin", "run_plugin_node"]


def load_plugin(
    path: str | Path, *, dependencies: Sequence[str | Path] = ()
) -> dict[str, PluginNodeDefinition]:
    """Read the node definitions of the plugin directory `path` in its runtime environment, by type id.

    `dependencies` are directories of the plugins it needs. Needs a connected Ray; raises the plugin's error
    (`PluginImportError`, `PluginEnvironmentError`, a `DependencyError`) if it cannot be loaded.
    """
    from nodes.plugins.loader import load_plugins

    package = open_plugin_dir(Path(path))
    available = [package, *(open_plugin_dir(Path(d)) for d in dependencies)]
    report = load_plugins([package], None, available=available)
    if package.ref in report.failed:
        raise report.failed[package.ref]
    return {d.spec.id: d for d in report.loaded[package.ref]}


def _run(
    definition: PluginNodeDefinition, inputs: dict[str, Any], params: dict[str, Any], extra: dict[str, Any]
) -> Any:
    from nodes.testing import run_node

    return run_node(definition, inputs, params, **extra)


def run_plugin_node(
    definition: PluginNodeDefinition,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 300.0,
    config: Mapping[str, str] | None = None,
    run_id: str = "test-run",
    node_id: str | None = None,
    workflow: str = "",
) -> Any:
    """`nodes.testing.run_node` of a plugin node, in a Ray task inside the plugin's runtime environment.

    Returns the `NodeResult`; a node exception is re-raised as Ray's task error (also an instance of the
    original exception class). `config`, `run_id`, `node_id` and `workflow` set what the node's context
    carries (see `nodes.testing.run_node`).
    """
    import ray

    task: Any = ray.remote(_run)
    options = task_options(definition.spec.resources, system_retries=0, runtime_env=definition.runtime_env)
    extra = {"config": dict(config or {}), "run_id": run_id, "node_id": node_id, "workflow": workflow}
    ref = task.options(**options).remote(definition, dict(inputs or {}), dict(params or {}), extra)
    return ray.get(ref, timeout=timeout_s)
