"""A workflow as a standalone Python script of plain Ray tasks (`rayweave export --format ray`): a way out.

`ray_script(doc, catalog)` compiles the document with the project's compiler (validation, resolved node types,
port types, coercions; no optimization, so each document node is one task) and returns the text of a script
that needs only `ray` and the modules defining the node functions when it runs: never rayweave's engine,
store, server or compiler. Each node becomes `ray.remote(fn).options(...)`, submitted in topological order
with the ObjectRefs of its upstream nodes, the workflow inputs, literal values and its params; the outputs are
fetched with `ray.get` and printed as one JSON document. The helpers the script carries (how a node is called
and its return value split into ports) are the source of `engine.formats.ray_runtime`, pasted in.

Translated: function, generator, async and class nodes; several output ports; list ports bound element by
element; conditional branches (a node given SKIP is skipped unless it accepts skipped inputs, as in rayweave;
skipped workflow outputs are left out); map nodes, as a loop submitting the sub-workflow's tasks once per
element (the driver waits for the list first); resources (`num_cpus`, `num_gpus`, `memory`, `resources`);
Ray's system retries; `retry.max_attempts` as Ray's `max_retries` with `retry_exceptions` (Ray retries at
once: the backoff is not kept); the implicit Int -> Float coercion at edges. Refused with `ExportError`,
naming each node and what: coercions of a map's elements, timeouts, nodes of plugins with their own runtime
environment, node types without an importable module-level function, the built-in file and network nodes
(their access policy is rayweave's), other coercions, secret params and values that are not plain JSON. Not
kept, by design: the record of the run, the cache, type checks at ports, events (a node's progress and logs
go nowhere), circuit breakers, the backoff between retries.
"""

from __future__ import annotations

import builtins
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ExportError

if TYPE_CHECKING:
    from engine.compile.plan import Binding, Plan, PlannedNode
    from nodes import Catalog

__all__ = ["ray_script"]

_MARKER = "# --- runtime: copied into exported scripts from here on ---\n"
#: Ray options passed on as they are (anything else the planner sets is refused rather than dropped).
_OPTIONS = ("name", "num_cpus", "num_gpus", "memory", "resources", "max_retries", "retry_exceptions")


def ray_script(doc: Any, catalog: Catalog | None = None) -> str:
    """The text of a standalone script running workflow `doc` (a document, its data, a builder workflow or a
    file) as plain Ray tasks; raises `WorkflowValidationError` when it does not compile and `ExportError`
    listing every node that cannot be translated (see the module docstring)."""
    from engine.compile.pipeline import compile_workflow

    plan = compile_workflow(doc, catalog, optimize=False)
    problems: list[str] = []
    functions: list[list[str]] = []
    main = _run_function("run", plan, problems, functions)
    defaults = {n: spec.default for n, spec in plan.inputs.items() if not spec.required}
    required = tuple(n for n, spec in plan.inputs.items() if spec.required)
    defaults_text = _literal(defaults, "the workflow inputs' defaults", problems)
    if problems:
        raise ExportError(plan.name, problems)
    types = {name: str(spec.type) for name, spec in plan.inputs.items()}
    return _script(plan, [*functions, main], defaults_text, required, types)


def _run_function(name: str, plan: Plan, problems: list[str], functions: list[list[str]]) -> list[str]:
    """The lines of the script's function `name` submitting every node of `plan` (the workflow's, or a map
    node's sub-workflow's: those go to `functions`, before the function that calls them)."""
    imports: dict[str, str] = {}
    body: list[str] = []
    for planned in plan.nodes:
        if planned.spec is not None and planned.spec.control == "map" and planned.subplan is not None:
            body += _map_lines(planned, problems, functions)
        else:
            body += _node_lines(planned, imports, problems)
    outputs = {
        out: _expression(binding, problems, "workflow output " + out) for out, binding in plan.outputs.items()
    }
    return [
        f"def {name}(inputs: Mapping[str, Any]) -> dict[str, Any]:",
        f'    """Submit every node of workflow {_title(plan.name)!r} in topological order; its outputs (ObjectRefs or',
        '    input values)."""',
        "    functions = {",
        *(f"        {type_id!r}: {text}," for type_id, text in imports.items()),
        "    }",
        "    refs: dict[str, dict[str, Any]] = {}",
        *body,
        "    return {",
        *(f"        {out!r}: {text}," for out, text in outputs.items()),
        "    }",
    ]


def _map_lines(planned: PlannedNode, problems: list[str], functions: list[list[str]]) -> list[str]:
    """A map node as a loop of the sub-workflow's remote calls, one per element (`map_each` in the script)."""
    from engine.compile.maps import item_coercion_key
    from engine.execution.mapping import map_layout

    assert planned.subplan is not None
    where = f"node {planned.id!r} ({planned.type_id})"
    layout = map_layout(planned)
    if planned.coercions:
        problems.append(f"{where}: the implicit coercion of its elements is not translated")
    before = len(problems)
    name = f"run_sub_{len(functions) + 1}"
    sub = _run_function(name, planned.subplan, problems, functions)
    functions.append(sub)
    defaults = {n: spec.default for n, spec in planned.subplan.inputs.items() if not spec.required}
    given = {
        port: _expression(binding, problems, f"{where}, input {port!r}")
        for port, binding in planned.inputs.items()
        if port != layout.list_port and port in planned.subplan.inputs
    }
    items = planned.inputs.get(layout.list_port)
    if items is None or len(problems) > before or item_coercion_key(layout.list_port) in planned.coercions:
        return []
    entries = {key: _literal(value, where, problems) for key, value in defaults.items()} | given
    given_text = "{" + ", ".join(f"{key!r}: {text}" for key, text in entries.items()) + "}"
    return [
        f"    # node {planned.id!r}: {planned.type_id}, sub-workflow {planned.subplan.name!r} once per element",
        f"    refs[{planned.id!r}] = map_each(",
        f"        {name},",
        f"        {_expression(items, problems, where)},",
        f"        {given_text},",
        f"        ({layout.item_input!r}, {layout.index_input!r}, {layout.sub_output!r}, {layout.out_port!r}),",
        "    )",
    ]


def _node_lines(planned: PlannedNode, functions: dict[str, str], problems: list[str]) -> list[str]:
    """The lines of `run()` that submit one node (appends what cannot be translated to `problems`)."""
    where = f"node {planned.id!r} ({planned.type_id})"
    definition = planned.definition
    if definition is None or planned.is_fused:
        problems.append(f"{where}: has no node definition (a fused group); nothing to call")
        return []
    spec = definition.spec
    before = len(problems)
    if spec.control is not None:
        problems.append(f"{where}: a {spec.control!r} node is expanded by the engine; not translated")
    if planned.timeout_s is not None:
        problems.append(f"{where}: a timeout of {planned.timeout_s} s is not translated; remove it to export")
    if spec.plugin == "builtin" and {"io", "network"} & set(spec.tags):
        problems.append(
            f"{where}: reaches files or the network through rayweave's access policy (data roots, internal "
            f"addresses refused), which the script does not carry; read or fetch in a node of your own module"
        )
    if planned.ray_options.get("runtime_env"):
        problems.append(
            f"{where}: runs in its plugin's own runtime environment, which the script cannot recreate; install "
            f"the plugin's package where the script runs and call its function from a node of your own module"
        )
    module, qualname = getattr(definition, "__module__", ""), getattr(definition, "__qualname__", "")
    if not _importable(definition, module, qualname):
        problems.append(
            f"{where}: its function {module}.{qualname} cannot be imported by name; define the node at module "
            f"level of an importable module (export a .py workflow file from the directory that makes it "
            f"importable, e.g. examples/flow.py as examples.flow)"
        )
    options = _options(planned, where, problems)
    arguments = [
        f"{port}={_expression(binding, problems, f'{where}, input {port!r}')}"
        for port, binding in planned.inputs.items()
    ]
    arguments += [f"{name}={_param(value, where, name, problems)}" for name, value in planned.params.items()]
    if len(problems) > before:
        return []
    functions.setdefault(planned.type_id, f"node_function({module!r}, {qualname!r})")
    ports = tuple(definition.layout.names)
    return [
        f"    # node {planned.id!r}: {planned.type_id}",
        f"    refs[{planned.id!r}] = submit(",
        f"        functions[{planned.type_id!r}],",
        f"        {planned.id!r},",
        f"        {ports!r},",
        f"        {{{', '.join(options)}}},",
        *(f"        {argument}," for argument in arguments),
        "    )",
    ]


def _options(planned: PlannedNode, where: str, problems: list[str]) -> list[str]:
    """The `submit` options of a node as `'key': expression` texts: Ray's options and how to call the node."""
    assert planned.definition is not None
    spec, layout = planned.definition.spec, planned.definition.layout
    found: dict[str, str] = {}
    for key, value in planned.ray_options.items():
        if key == "runtime_env":
            continue
        if key not in _OPTIONS:
            problems.append(f"{where}: the Ray option {key}={value!r} is not translated")
            continue
        found[key] = _literal(value, f"{where}, Ray option {key}", problems)
    retry = planned.retry
    if retry.max_attempts > 1:
        # Ray's max_retries counts worker deaths and exceptions together; keep the larger of the two.
        system = planned.ray_options.get("max_retries")
        found["max_retries"] = repr(max(retry.max_attempts - 1, system if isinstance(system, int) else 0))
        found["retry_exceptions"] = _retry_exceptions(retry.retry_on, where, problems)
    if layout.mode != "single":
        found["mode"] = repr(layout.mode)
    if spec.kind != "function":
        found["kind"] = repr(spec.kind)
    if layout.optional:
        found["optional"] = repr(tuple(sorted(layout.optional)))
    floats = tuple(sorted(port for port, coercion in planned.coercions.items() if _widening(coercion)))
    for port, coercion in planned.coercions.items():
        if port not in floats:
            problems.append(
                f"{where}, input {port!r}: the implicit coercion {coercion.source} -> {coercion.target} is not "
                f"translated (only Int -> Float is)"
            )
    if floats:
        found["floats"] = repr(floats)
    from engine.compile.plan import ListBinding

    lists = tuple(port for port, binding in planned.inputs.items() if isinstance(binding, ListBinding))
    if lists:
        found["lists"] = repr(lists)
    if spec.accepts_skipped:
        found["accepts_skipped"] = "True"
    return [f"{key!r}: {text}" for key, text in found.items()]


def _retry_exceptions(names: tuple[str, ...], where: str, problems: list[str]) -> str:
    """Ray's `retry_exceptions`: True for every exception, or the list of built-in exception classes."""
    if not names:
        return "True"
    found = []
    for name in names:
        short = name.removeprefix("builtins.")
        kind = getattr(builtins, short, None)
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            problems.append(f"{where}: retry_on {name!r} is not a built-in exception; not translated")
        found.append(short)
    return f"[{', '.join(found)}]"


def _widening(coercion: Any) -> bool:
    """Whether an implicit coercion is Int -> Float (or Number -> Float), which the script does as float()."""
    from typesys.builtin_rules import int_to_float

    return bool(coercion.steps) and all(step.convert is int_to_float for step in coercion.steps)


def _importable(definition: Any, module: str, qualname: str) -> bool:
    """Whether `module.qualname` names `definition` (what the script's `node_function` looks up)."""
    if not module or module == "__main__" or "<locals>" in qualname:
        return False
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is definition


def _expression(binding: Binding, problems: list[str], where: str) -> str:
    """The Python expression of a binding inside `run()`: an ObjectRef, an input, a literal or a list."""
    from engine.compile.plan import Const, InputRef, ListBinding, NodeRef

    if isinstance(binding, NodeRef):
        return f"refs[{binding.node!r}][{binding.port!r}]"
    if isinstance(binding, InputRef):
        return f"inputs[{binding.name!r}]"
    if isinstance(binding, Const):
        return _literal(binding.value, where, problems)
    if isinstance(binding, ListBinding):
        return "[" + ", ".join(_expression(item, problems, where) for item in binding.items) + "]"
    problems.append(f"{where}: the binding {binding!r} is not translated")
    return "None"


def _param(value: Any, where: str, name: str, problems: list[str]) -> str:
    from engine.secrets.refs import is_secret_ref

    if is_secret_ref(value):
        problems.append(f"{where}, param {name!r}: refers to a secret, which the script cannot open")
        return "None"
    return _literal(value, f"{where}, param {name!r}", problems)


def _literal(value: Any, where: str, problems: list[str]) -> str:
    """`repr(value)` when it is plain JSON data (so the script's literal means the same value)."""
    if _plain(value):
        return repr(value)
    problems.append(f"{where}: the value {value!r:.80} is not plain JSON data; not translated")
    return "None"


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _runtime() -> str:
    """The helpers every script carries: `engine.formats.ray_runtime` from its marker on."""
    text = Path(__file__).with_name("ray_runtime.py").read_text(encoding="utf-8")
    return text[text.index(_MARKER) + len(_MARKER) :]


def _title(name: str) -> str:
    """A workflow's name made safe to put inside the script's docstrings."""
    return name.replace("\\", "/").replace('"', "'")


def _script(
    plan: Plan, functions: list[list[str]], defaults: str, required: tuple[str, ...], types: Mapping[str, str]
) -> str:
    text = "\n".join(line for function in functions for line in function)
    modules = sorted(set(re.findall(r"node_function\('([^']+)'", text)))
    title = _title(plan.name)
    header = f'''#!/usr/bin/env python3
"""{title}: a rayweave workflow exported as a script of plain Ray tasks (`rayweave export --format ray`).

It needs only `ray` and the modules defining its node functions ({", ".join(modules) or "none"}).
Run: python THIS_SCRIPT [--input NAME=VALUE ...] [--address RAY_ADDRESS]
(VALUE is read as `rayweave run` reads it: by the input's type; JSON for structured types). The last line on
stdout is the workflow's outputs as one JSON document.
Each node is one Ray task; unlike a rayweave run there is no record, cache, type check at ports or event.
"""

'''
    main = [
        "",
        "",
        "#: The workflow inputs with a default, and the names of those without one (give them with --input).",
        f"DEFAULTS: dict[str, Any] = {defaults}",
        f"REQUIRED: tuple[str, ...] = {required!r}",
        "#: The declared type of each input (how its --input text is read).",
        f"TYPES: dict[str, str] = {dict(types)!r}",
    ]
    for function in functions:
        main += ["", "", *function]
    main += [
        "",
        "",
        "def main() -> int:",
        '    """Parse the inputs, start or join Ray, run the workflow and print its outputs."""',
        "    import ray",
        "",
        "    inputs, address = parse_arguments(DEFAULTS, REQUIRED, TYPES)",
        "    ray.init(address=address)",
        "    try:",
        "        text = fetch_outputs(run(inputs))",
        "    except ray.exceptions.RayTaskError as exc:",
        '        print(f"error: {exc}", file=sys.stderr)',
        "        return 1",
        "    finally:",
        "        ray.shutdown()",
        "    print(text)",
        "    return 0",
        "",
        "",
        'if __name__ == "__main__":',
        "    sys.exit(main())",
        "",
    ]
    return header + _runtime() + "\n".join(main)
