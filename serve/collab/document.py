"""The shared document of a workflow: how a canonical workflow document (`rayweave.workflow/1`) is laid out in a
Yjs document (`pycrdt.Doc`), and back (ADR 019).

Root types, each a `Y.Map`:

- `meta`: `format`, `name`, `description` (plain values) and `version`, the stored version the shared document
  is based on (written by the server only; informational for clients).
- `inputs`: input name -> `Y.Map` of the input's fields (`type`, `default`, `description`; plain values).
- `nodes`: node id -> `Y.Map` with `type`, `in` (`Y.Map` port -> binding as plain JSON: `"node.port"`,
  `"$inputs.x"`, `{"value": ...}` or a list of these), `params` (`Y.Map` name -> plain JSON), `position`
  (`Y.Map` with `x`, `y`; layout only, never part of a version) and the per-node overrides (`retry`,
  `timeout_s`, `resources`, `cache`, `convert`, `description`) as plain values.
- `outputs`: output name -> reference (a string).

Every place two people may change different parts at the same time is a `Y.Map` (a node's params, its wiring
port by port, its position), so such edits merge instead of one overwriting the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pycrdt import Doc, Map

#: The root types of a workflow's shared document.
ROOTS = ("meta", "inputs", "nodes", "outputs")
#: The fields of `meta` that belong to the workflow document (the rest is the server's bookkeeping).
META_FIELDS = ("format", "name", "description")
#: The fields of a node kept as `Y.Map`s of their own (merged key by key).
NODE_MAPS = ("in", "params", "position")
#: Layout fields of a node that the shared document keeps but a saved version does not.
LAYOUT_FIELDS = ("position",)
#: The order of a node's fields in the canonical form.
NODE_ORDER = ("type", "in", "params", "retry", "timeout_s", "resources", "cache", "convert", "description")


def roots(doc: Doc[Any]) -> dict[str, Map[Any]]:
    """The root maps of a shared document (created empty when missing)."""
    return {name: doc.get(name, type=Map) for name in ROOTS}


def load_workflow(doc: Doc[Any], document: Mapping[str, Any], *, version: int | None = None) -> None:
    """Write a canonical workflow document into an empty shared document (one transaction)."""
    apply_change(doc, {}, document, version=version)


def apply_change(
    doc: Doc[Any],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    version: int | None = None,
    origin: Any = None,
) -> None:
    """Apply what changed from the stored document `old` to `new` (e.g. a version saved through the REST API)
    to the shared document, field by field: what `old` and `new` agree on is not touched, so edits made in the
    shared document meanwhile survive unless the new version changed the same field (then the new version
    wins). `version`, when given, becomes `meta.version`."""
    parts = roots(doc)
    with doc.transaction(origin=origin):
        for field in META_FIELDS:
            _set_plain(parts["meta"], field, old.get(field), new.get(field))
        if version is not None:
            parts["meta"]["version"] = float(version)
        _apply_entries(parts["inputs"], _mapping(old.get("inputs")), _mapping(new.get("inputs")), _input_map)
        _apply_entries(parts["outputs"], _mapping(old.get("outputs")), _mapping(new.get("outputs")), None)
        nodes = parts["nodes"]
        old_nodes, new_nodes = _mapping(old.get("nodes")), _mapping(new.get("nodes"))
        for node_id in sorted(set(old_nodes) | set(new_nodes)):
            before, after = old_nodes.get(node_id), new_nodes.get(node_id)
            if before == after:
                continue
            current = nodes.get(node_id) if node_id in nodes else None
            if after is None:
                if node_id in nodes:
                    del nodes[node_id]
            elif not isinstance(current, Map) or not isinstance(before, Mapping):
                nodes[node_id] = _node_map(after)
            else:
                _apply_node(current, before, after)


def to_workflow(doc: Doc[Any]) -> dict[str, Any]:
    """The canonical workflow document the shared document holds now (layout fields left out; numbers that
    are whole come back as ints, as a JSON client would send them). Not validated: see `engine.compile`."""
    parts = roots(doc)
    meta = parts["meta"].to_py() or {}
    document: dict[str, Any] = {}
    for field in META_FIELDS:
        if field in meta and meta[field] is not None:
            document[field] = plain(meta[field])
    document["inputs"] = {name: plain(spec) for name, spec in sorted((parts["inputs"].to_py() or {}).items())}
    nodes: dict[str, Any] = {}
    for node_id, node in sorted((parts["nodes"].to_py() or {}).items()):
        if not isinstance(node, dict):
            nodes[node_id] = plain(node)  # kept as is: validation names what is wrong with it
            continue
        fields = {k: plain(v) for k, v in node.items() if k not in LAYOUT_FIELDS}
        for key in ("in", "params"):
            if fields.get(key) == {}:
                del fields[key]
        nodes[node_id] = {k: fields[k] for k in sorted(fields, key=_node_key)}
    document["nodes"] = nodes
    document["outputs"] = {name: plain(ref) for name, ref in sorted((parts["outputs"].to_py() or {}).items())}
    return document


def base_version(doc: Doc[Any]) -> int | None:
    """The stored version the shared document says it is based on (`meta.version`), if any."""
    value = roots(doc)["meta"].get("version")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def plain(value: Any) -> Any:
    """A JSON value read from a shared document with whole floats turned back into ints (Yjs numbers are
    doubles: `2` written by any client reads back as `2.0`)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _node_key(key: str) -> tuple[int, str]:
    return (NODE_ORDER.index(key) if key in NODE_ORDER else len(NODE_ORDER), key)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _y_value(value: Any) -> Any:
    """A plain JSON value as written into a shared document (ints as floats, as Yjs numbers are)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _y_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_y_value(v) for v in value]
    return value


def _set_plain(target: Map[Any], key: str, before: Any, after: Any) -> None:
    if before == after:
        return
    if after is None:
        if key in target:
            del target[key]
    else:
        target[key] = _y_value(after)


def _input_map(spec: Any) -> Any:
    return Map({k: _y_value(v) for k, v in spec.items()}) if isinstance(spec, Mapping) else _y_value(spec)


def _node_map(node: Mapping[str, Any]) -> Map[Any]:
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if key in NODE_MAPS and isinstance(value, Mapping):
            fields[key] = Map({k: _y_value(v) for k, v in value.items()})
        else:
            fields[key] = _y_value(value)
    for key in ("in", "params"):
        fields.setdefault(key, Map())
    return Map(fields)


def _apply_entries(target: Map[Any], before: Mapping[str, Any], after: Mapping[str, Any], make: Any) -> None:
    """Entries of a root map: added, replaced or removed where `before` and `after` differ."""
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if new is None:
            if key in target:
                del target[key]
        elif make is not None and isinstance(target.get(key), Map) and isinstance(old, Mapping):
            current = target[key]
            for field in sorted(set(old) | set(_mapping(new))):
                _set_plain(current, field, old.get(field), _mapping(new).get(field))
        else:
            target[key] = make(new) if make is not None else _y_value(new)


def _apply_node(current: Map[Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """A node present on both sides: its maps merged key by key, its other fields replaced when changed."""
    for field in sorted((set(before) | set(after)) - set(LAYOUT_FIELDS)):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if field in NODE_MAPS:
            inner = current.get(field)
            if not isinstance(inner, Map):
                current[field] = Map({k: _y_value(v) for k, v in _mapping(new).items()})
                continue
            old_map, new_map = _mapping(old), _mapping(new)
            for key in sorted(set(old_map) | set(new_map)):
                _set_plain(inner, key, old_map.get(key), new_map.get(key))
        else:
            _set_plain(current, field, old, new)
