"""Incompatible changes between two OpenAPI documents: what a client written against the old one would break on.

Removing a route, a parameter, a response status or a response field, changing a field's type, or adding a
required request field or parameter is incompatible. Adding routes, optional fields and responses is fine.

An `enum` may narrow what the server sends (a response string becoming an enum, or an enum losing values: a
client handles fewer cases) and widen what it accepts (a request enum gaining values). Narrowing what it
accepts is incompatible, except where the server refused the other values already (`ENFORCED_BEFORE`).
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
#: Request parameters that became enums listing the only values the server accepted before, by operation and
#: name, with the reason; other values were refused before (400) and are now (422), so no request that worked
#: stops working.
ENFORCED_BEFORE = {
    ("GET /v1/runs", "status"): "run states; any other value was a 400 listing them",
}


class _Doc:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 20:
            schema = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
            seen += 1
        return schema

    def shape(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """A comparable form of a schema's type (descriptions, titles and examples ignored)."""
        schema = self.resolve(schema)
        if depth > 6:
            return "..."
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return (key, tuple(sorted(repr(self.shape(s, depth + 1)) for s in schema[key])))
        kind = schema.get("type")
        if kind == "array":
            return ("array", self.shape(schema.get("items", {}), depth + 1))
        if kind == "object" or "properties" in schema:
            return "object"
        return (kind, schema.get("format"), tuple(schema.get("enum", ())), schema.get("const"))


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in document.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    }


def _compare_object(
    old: _Doc, new: _Doc, a: dict[str, Any], b: dict[str, Any], where: str, request: bool
) -> list[str]:
    problems: list[str] = []
    a, b = old.resolve(a), new.resolve(b)
    if not _compatible_shapes(old.shape(a), new.shape(b), request):
        return [f"{where}: type changed from {old.shape(a)} to {new.shape(b)}"]
    a_props, b_props = a.get("properties", {}), b.get("properties", {})
    for name, prop in a_props.items():
        if name not in b_props:
            if not request:
                problems.append(f"{where}: field {name!r} removed")
            continue
        problems += _compare_object(old, new, prop, b_props[name], f"{where}.{name}", request)
    if request:
        added = set(b.get("required", ())) - set(a.get("required", ()))
        problems += [f"{where}: new required field {name!r}" for name in sorted(added)]
    elif a.get("type") == "array" and "items" in a:
        problems += _compare_object(old, new, a["items"], b.get("items", {}), f"{where}[]", request)
    return problems


def _compatible_shapes(old: Any, new: Any, request: bool) -> bool:
    """Whether a value of shape `old` may now have shape `new` (see the module docstring on enums)."""
    if old == new:
        return True
    if isinstance(old, tuple) and isinstance(new, tuple) and old[:1] == new[:1] == ("array",):
        return _compatible_shapes(old[1], new[1], request)
    if not (isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new) == 4):
        return False
    if (old[0], old[1], old[3]) != (new[0], new[1], new[3]):
        return False
    old_enum, new_enum = set(old[2]), set(new[2])
    if request:
        return bool(old_enum) and old_enum <= new_enum
    return not old_enum or new_enum <= old_enum


def _text_parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without a `null` alternative: parameters are text, so `anyOf [X, null]` and `X`
    accept the same requests (leaving it out is `required: false`)."""
    schema: dict[str, Any] = param.get("schema", {})
    others = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(schema.get("anyOf", ())) == 2 and len(others) == 1:
        return {**others[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def incompatible_changes(old_document: dict[str, Any], new_document: dict[str, Any]) -> list[str]:
    """Every incompatible change from `old_document` to `new_document` (empty: compatible)."""
    old, new = _Doc(old_document), _Doc(new_document)
    old_ops, new_ops = _operations(old_document), _operations(new_document)
    problems: list[str] = []
    for key, op in old_ops.items():
        where = f"{key[0]} {key[1]}"
        if key not in new_ops:
            problems.append(f"{where}: route removed")
            continue
        new_op = new_ops[key]
        problems += _parameter_changes(old, new, op, new_op, where)
        problems += _body_changes(old, new, op, new_op, where)
        problems += _response_changes(old, new, op, new_op, where)
    return problems


def _parameter_changes(
    old: _Doc, new: _Doc, op: dict[str, Any], new_op: dict[str, Any], where: str
) -> list[str]:
    """Parameters removed, retyped incompatibly or newly required."""
    problems: list[str] = []
    old_params = {(p["name"], p["in"]): p for p in op.get("parameters", [])}
    new_params = {(p["name"], p["in"]): p for p in new_op.get("parameters", [])}
    for pkey, param in old_params.items():
        if pkey not in new_params:
            problems.append(f"{where}: parameter {pkey[0]!r} removed")
        elif not _compatible_shapes(
            old.shape(_text_parameter(param)),
            new.shape(_text_parameter(new_params[pkey])),
            request=(where, pkey[0]) not in ENFORCED_BEFORE,
        ):
            problems.append(f"{where}: parameter {pkey[0]!r} changed type")
    for pkey, param in new_params.items():
        if pkey not in old_params and param.get("required"):
            problems.append(f"{where}: new required parameter {pkey[0]!r}")
    return problems


def _body_changes(old: _Doc, new: _Doc, op: dict[str, Any], new_op: dict[str, Any], where: str) -> list[str]:
    """A JSON request body removed, narrowed, or newly required."""
    old_body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    new_body = new_op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if old_body is not None:
        if new_body is None:
            return [f"{where}: request body removed"]
        return _compare_object(old, new, old_body, new_body, f"{where} body", True)
    if new_body is not None and new_op.get("requestBody", {}).get("required"):
        return [f"{where}: new required request body"]
    return []


def _response_changes(
    old: _Doc, new: _Doc, op: dict[str, Any], new_op: dict[str, Any], where: str
) -> list[str]:
    """Responses or media types no longer offered, and response schemas changed incompatibly."""
    problems: list[str] = []
    for status, response in op.get("responses", {}).items():
        new_response = new_op.get("responses", {}).get(status)
        if new_response is None:
            problems.append(f"{where}: response {status} removed")
            continue
        for media, content in response.get("content", {}).items():
            new_content = new_response.get("content", {}).get(media)
            if new_content is None:
                problems.append(f"{where}: response {status} no longer offers {media}")
            elif "schema" in content:
                problems += _compare_object(
                    old, new, content["schema"], new_content.get("schema", {}), f"{where} -> {status}", False
                )
    return problems
