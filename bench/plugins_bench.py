"""Plugin benchmark: the first node run of a plugin whose runtime environment is new (cold) and already built
(warm), against the same node from the built-in library and a raw Ray task, in one Ray session.

Run: `python -m bench.plugins_bench` (about a minute on a 2-core machine). Target (issue 7): warm overhead of
the first plugin node run over the built-in node's under 2 s; cold is reported.

Each "first run" is a Ray task invoking the node's definition with its Ray options (as the engine does): for a
plugin node that is its runtime environment, so a new one is built and a worker started for it. Phases:

- builtin first / again: `builtin/to_string@1` in a plain Ray task (first call, then a second one);
- raw Ray: a plain `ray.remote` function doing `str(x)`;
- plugin cold: a plugin defining the same node, content never seen by this Ray (a nonce), so its code is
  uploaded, its catalog read inside a new runtime environment, then the node run — split into load and run;
- plugin cold + wheel: the same with a bundled wheel requirement (a library installed into the environment);
- plugin warm: the plugin's environment already built; a new task, as the first node of a second workflow
  (Ray keeps the environment's idle worker, so this is a task on an existing worker);
- plugin warm env, new worker: a second worker process started in the built environment (two tasks at once);
- plugin warm catalog re-read: loading the same plugin version again (nothing uploaded or built).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

NAP_S = 0.3
NODE = '''
from typing import Any
from nodes import node
{imports}

@node(category="convert")
def to_string(value: Any) -> str:
    """Convert any value to String ({nonce})."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
'''


def _invoke(definition: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = definition.invoke(inputs, {})
    return result


def _slow_invoke(definition: Any, inputs: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    time.sleep(seconds)
    result: dict[str, Any] = definition.invoke(inputs, {})
    return result


def _raw(x: Any) -> str:
    return str(x)


def _get(submit: Callable[..., Any], *args: Any) -> Any:
    import ray

    return ray.get(submit(*args))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _plugin(parent: Path, name: str, *, wheel: bool) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.nodes.plugins.fixtures import build_wheel, write_plugin

    nonce = uuid.uuid4().hex
    wheels = {}
    imports = ""
    if wheel:
        lib = f"benchlib{nonce[:8]}"
        built = build_wheel(parent / "wheels", lib, "1.0.0", {f"{lib}/__init__.py": "VALUE = 1\n"})
        wheels[f"wheels/{built.name}"] = built
        imports = f"import {lib}"
    code = NODE.format(imports=imports, nonce=nonce)
    return write_plugin(parent, name, "1.0.0", code, wheels=wheels)


def main() -> None:
    """Run every phase and print a table of seconds."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from nodes import Catalog
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="rayweave-plugins-bench-") as tmp:
        ensure_ray(Settings(home=Path(tmp) / "home"), num_cpus=2, include_dashboard=False)
        try:
            task: Any = ray.remote(_invoke)
            raw: Any = ray.remote(_raw)
            ray.get(raw.remote(0))  # a worker exists before anything is measured
            builtin = Catalog.builtin().get("builtin/to_string@1")
            rows.append(("builtin first run", _timed(lambda: ray.get(task.remote(builtin, {"value": 1})))[0]))
            rows.append(("builtin again", _timed(lambda: ray.get(task.remote(builtin, {"value": 2})))[0]))
            rows.append(("raw Ray task", _timed(lambda: ray.get(raw.remote(3)))[0]))

            for label, wheel in (("plugin cold", False), ("plugin cold + wheel", True)):
                package = open_plugin_dir(_plugin(Path(tmp), f"bench{'w' if wheel else ''}", wheel=wheel))
                load_s, report = _timed(partial(load_plugins, [package]))
                [definition] = report.loaded[package.ref]
                submit = task.options(**definition.ray_options()).remote
                run_s, out = _timed(partial(_get, submit, definition, {"value": 4}))
                assert out == {"out": "4"}, out
                rows.append((f"{label}: load (upload + env + catalog)", load_s))
                rows.append((f"{label}: first node run", run_s))
                rows.append((f"{label}: total", load_s + run_s))
                if not wheel:
                    cold_definition = definition
            options = cold_definition.ray_options()
            warm_s, _ = _timed(lambda: ray.get(task.options(**options).remote(cold_definition, {"value": 5})))
            rows.append(("plugin warm: first node of a new workflow", warm_s))
            # Two tasks at once in the built environment: the second needs a new worker process of that env.
            slow: Any = ray.remote(_slow_invoke).options(**options)
            pair_s, _ = _timed(
                lambda: ray.get([slow.remote(cold_definition, {"value": i}, NAP_S) for i in (6, 7)])
            )
            rows.append(("plugin warm env: a new worker process (overhead)", pair_s - NAP_S))
            reload_s, _ = _timed(lambda: load_plugins([open_plugin_dir(Path(tmp) / "bench-1.0.0")]))
            rows.append(("plugin warm: catalog re-read", reload_s))
        finally:
            shutdown_ray()
    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        print(f"{label:{width}}  {seconds:8.3f} s")
    builtin_first = dict(rows)["builtin first run"]
    warm = dict(rows)["plugin warm: first node of a new workflow"]
    overhead = warm - builtin_first
    print(
        f"\nwarm overhead over builtin: {overhead:.3f} s (target < 2 s: {'met' if overhead < 2 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
