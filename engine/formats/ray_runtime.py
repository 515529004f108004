"""The helpers every script made by `engine.formats.ray_script` carries, copied into it as text.

This module is never imported by the engine: `ray_script` reads its source from the line after the marker
below and pastes it into the exported script, so it may import only the standard library and Ray (imported
inside the functions, so that reading it here costs nothing). It reproduces, in a few lines, how rayweave
calls a node (inputs and params by name; generators, coroutines and classes run to one final value) and
maps its return value to output ports (`nodes.signature.OutputLayout.split`).
"""

# --- runtime: copied into exported scripts from here on ---
from __future__ import annotations

import argparse
import importlib
import json
import sys  # noqa: F401 (used by the main() of the exported script)
from collections.abc import Mapping
from typing import Any


def node_function(module: str, qualname: str) -> Any:
    """The plain function (or class) behind a node: a rayweave `@node` keeps it as its `.target`."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found.target if type(found).__name__ == "NodeDefinition" else found


def _is_skip(value: Any) -> bool:
    return type(value).__name__ == "SkipType"


def _finish(result: Any) -> Any:
    """A generator's last value, a coroutine's result: what rayweave takes as the node's return value."""
    import asyncio
    import inspect

    if inspect.isgenerator(result):
        last = None
        for last in result:  # noqa: B007 (the last value yielded is the result)
            pass
        return last
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isasyncgen(result):

        async def drain() -> Any:
            last = None
            async for last in result:  # noqa: B007
                pass
            return last

        return asyncio.run(drain())
    return result


def _split(result: Any, node: str, ports: tuple[str, ...], mode: str, optional: tuple[str, ...]) -> list[Any]:
    """One value per output port, as rayweave maps a return value (single, none, mapping or attrs)."""
    if mode == "single":
        return [result]
    if mode == "none":
        return []
    if mode == "mapping" or isinstance(result, Mapping):
        if not isinstance(result, Mapping):
            raise TypeError(
                f"node {node!r} returned {type(result).__name__}; expected a dict with {list(ports)}"
            )
        missing = [p for p in ports if p not in result and p not in optional]
        if missing:
            raise TypeError(f"node {node!r} returned no value for output port(s) {missing}")
        return [result.get(p) for p in ports]
    return [getattr(result, p) for p in ports]


def node_task(
    function: Any,
    node: str,
    ports: tuple[str, ...],
    mode: str = "single",
    kind: str = "function",
    optional: tuple[str, ...] = (),
    floats: tuple[str, ...] = (),
    lists: tuple[str, ...] = (),
    accepts_skipped: bool = False,
) -> Any:
    """The body of the Ray task of one node: calls `function` with the node's inputs and params by name and
    returns one value per output port. `floats`: inputs, or list elements as `port[i]`, widened Int -> Float
    as rayweave does at an edge; `lists`: ports bound element by element. Skips go as in rayweave: a node
    given a skipped value (SKIP, the value of an untaken branch) is skipped, all its outputs SKIP, unless it
    `accepts_skipped`; then it gets SKIP as it is, and lists without their skipped elements."""
    import ray

    def run(**values: Any) -> Any:
        skipped: list[Any] = []
        for name, value in values.items():
            if name in lists:
                # Ray resolves only top-level arguments: the elements' ObjectRefs are fetched here.
                elements = [ray.get(v) if isinstance(v, ray.ObjectRef) else v for v in value]
                skipped += [v for v in elements if _is_skip(v)]
                value = [
                    float(v) if f"{name}[{i}]" in floats else v
                    for i, v in enumerate(elements)
                    if not _is_skip(v)
                ]
            elif _is_skip(value):
                skipped.append(value)
            elif name in floats:
                value = float(value)
            values[name] = value
        if skipped and not accepts_skipped:
            return _returned([skipped[0]] * len(ports))
        target = function
        if kind == "class":
            target = function()
            if hasattr(target, "setup"):
                target.setup()
        return _returned(_split(_finish(target(**values)), node, ports, mode, optional))

    run.__name__ = run.__qualname__ = node
    return run


def _returned(outputs: list[Any]) -> Any:
    """What the task returns for `num_returns=max(len(outputs), 1)`."""
    if len(outputs) == 1:
        return outputs[0]
    return tuple(outputs) if outputs else None


_OWN_OPTIONS = ("mode", "kind", "optional", "floats", "lists", "accepts_skipped")


def submit(
    function: Any, node: str, ports: tuple[str, ...], options: Mapping[str, Any], /, **values: Any
) -> dict[str, Any]:
    """Start node `node` as a Ray task and return an ObjectRef per output port. `options` go to Ray's
    `.options(...)`; those named in `_OWN_OPTIONS` are `node_task`'s."""
    import ray

    own = {k: options[k] for k in _OWN_OPTIONS if k in options}
    ray_options = {k: v for k, v in options.items() if k not in own}
    task = ray.remote(node_task(function, node, ports, **own))
    refs = task.options(num_returns=max(len(ports), 1), **ray_options).remote(**values)
    if len(ports) <= 1:
        return dict.fromkeys(ports, refs)
    return dict(zip(ports, refs, strict=True))


def _gather(*values: Any) -> list[Any]:
    return list(values)


def map_each(
    run_one: Any, items: Any, inputs: Mapping[str, Any], roles: tuple[str, str | None, str, str]
) -> dict[str, Any]:
    """A map node: its sub-workflow (`run_one`) once per element of `items`, the elements' outputs gathered
    into one list by a small task. `roles`: the sub-workflow's item and index inputs, its output, and the map
    node's output port. The driver waits for the list itself to know how many runs to start."""
    import ray

    item_input, index_input, sub_output, out_port = roles
    elements = ray.get(items) if isinstance(items, ray.ObjectRef) else items
    outs = []
    for index, item in enumerate(elements):
        values = {**inputs, item_input: item}
        if index_input is not None:
            values[index_input] = index
        outs.append(run_one(values)[sub_output])
    return {out_port: ray.remote(_gather).options(name="gather").remote(*outs)}


def parse_value(text: str, type_text: str) -> Any:
    """An input's value from its command-line text, as `rayweave run` reads it by the declared type: String as
    it is, Int, Float, Number and Bool from their words, anything else as JSON (ValueError when it is not)."""
    if type_text == "String":
        return text
    if type_text == "Int":
        return int(text)
    if type_text == "Float":
        return float(text)
    if type_text == "Number":
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    if type_text == "Bool":
        words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False}
        words["off"] = False
        if text.strip().lower() not in words:
            raise ValueError(text)
        return words[text.strip().lower()]
    return json.loads(text)


def parse_arguments(
    defaults: Mapping[str, Any], required: tuple[str, ...], types: Mapping[str, str]
) -> tuple[dict[str, Any], str | None]:
    """The workflow inputs (`--input name=value`, read by the input's type: `parse_value`) with the defaults
    applied, and `--address`; exits with status 2 on bad usage."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="a workflow input")
    parser.add_argument("--address", default=None, help="join this Ray cluster (default: start a local Ray)")
    args = parser.parse_args()
    inputs = dict(defaults)
    for item in args.input:
        name, sep, text = item.partition("=")
        if not sep or name not in types:
            parser.error(f"--input {item!r}: give NAME=VALUE with NAME one of {sorted(types)}")
        try:
            inputs[name] = parse_value(text, types[name])
        except ValueError:
            parser.error(
                f"--input {item!r}: not a valid {types[name]} (structured types take JSON, e.g. [1, 2])"
            )
    missing = [name for name in required if name not in inputs]
    if missing:
        parser.error(f"give the required input(s) {missing} with --input NAME=VALUE")
    return inputs, args.address


def fetch_outputs(outputs: Mapping[str, Any]) -> str:
    """The workflow's outputs fetched with `ray.get`, as one JSON document without the skipped ones (printed
    once Ray is shut down, so that no worker log Ray streams to the driver comes after it)."""
    import ray

    refs = {name: value for name, value in outputs.items() if isinstance(value, ray.ObjectRef)}
    fetched = dict(zip(refs, ray.get(list(refs.values())), strict=True))
    values = {name: fetched.get(name, value) for name, value in outputs.items()}
    # A skipped output (its branch not taken) is left out, as rayweave leaves it out of a run's outputs.
    return json.dumps({name: v for name, v in values.items() if not _is_skip(v)}, default=repr)
