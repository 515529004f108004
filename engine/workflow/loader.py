"""Read and write workflow documents as JSON or YAML text and files.

Every failure is a `WorkflowLoadError` with a readable message: a syntax error gives the line and column; a
document of the wrong shape gives the dotted path of the field (``nodes.mean.retry.backoff``) and, when it can
be found in the text, its line and column. Callers never see a traceback from the parser or from pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from engine.errors import WorkflowLoadError
from engine.workflow.document import WorkflowDoc

TextFormat = Literal["json", "yaml"]


def guess_format(text: str, filename: str | None = None) -> TextFormat:
    """``json`` for ``.json`` files or text starting with ``{``; ``yaml`` otherwise."""
    if filename is not None:
        suffix = Path(filename).suffix.lower()
        if suffix == ".json":
            return "json"
        if suffix in (".yaml", ".yml"):
            return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


def parse_text(text: str, fmt: TextFormat | None = None, *, source: str = "<text>") -> Any:
    """Parse JSON or YAML text into plain data; syntax errors become `WorkflowLoadError` with line/column."""
    fmt = fmt or guess_format(text, None if source.startswith("<") else source)
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowLoadError(
                f"invalid JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise WorkflowLoadError(f"invalid YAML: {problem}", source=source, line=line, column=column) from None


def doc_from_data(data: Any, *, text: str | None = None, source: str = "<data>") -> WorkflowDoc:
    """Validate parsed data as a `WorkflowDoc`; shape errors name the field path (and line when ``text``)."""
    if not isinstance(data, Mapping):
        kind = "nothing" if data is None else type(data).__name__
        raise WorkflowLoadError(
            f"a workflow document is a mapping with 'format', 'name', 'nodes' and 'outputs', got {kind}",
            source=source,
            line=1 if text is not None else None,
            column=1 if text is not None else None,
        )
    try:
        return WorkflowDoc.model_validate(data)
    except ValidationError as exc:
        positions = field_positions(text) if text is not None else {}
        problems = []
        seen: set[tuple[str, str]] = set()
        for error in exc.errors(include_url=False):
            path = field_path(data, error["loc"], error["type"])
            line, column = locate_field(positions, path)
            message = _message(error)
            if (".".join(path), message) in seen:
                continue  # the members of a union (int | float) report the same problem twice
            seen.add((".".join(path), message))
            problems.append(
                WorkflowLoadError(message, source=source, line=line, column=column, path=".".join(path))
            )
        first = problems[0]
        raise WorkflowLoadError(
            first.message,
            source=source,
            line=first.line,
            column=first.column,
            path=first.path,
            problems=problems,
        ) from None


def load_workflow_text(text: str, fmt: TextFormat | None = None, *, source: str = "<text>") -> WorkflowDoc:
    """Load a workflow document from JSON or YAML text (format guessed when not given)."""
    return doc_from_data(parse_text(text, fmt, source=source), text=text, source=source)


def load_workflow_file(path: str | Path) -> WorkflowDoc:
    """Load a workflow document from a ``.json``/``.yaml``/``.yml`` file; unreadable files raise OSError."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return load_workflow_text(text, guess_format(text, path.name), source=str(path))


def load_workflow(source: str | Path | Mapping[str, Any] | WorkflowDoc) -> WorkflowDoc:
    """Load a workflow from a `WorkflowDoc`, a mapping, a `Path`, a file name, or JSON/YAML text.

    A string is read as text when it looks like a document (starts with ``{`` or has several lines), and
    as a file name otherwise.
    """
    if isinstance(source, WorkflowDoc):
        return source
    if isinstance(source, Mapping):
        return doc_from_data(source)
    if isinstance(source, Path):
        return load_workflow_file(source)
    stripped = source.lstrip()
    if stripped.startswith("{") or "\n" in stripped:
        return load_workflow_text(source)
    return load_workflow_file(source)


def dump_workflow(doc: WorkflowDoc, fmt: TextFormat = "json") -> str:
    """The canonical JSON (indented, keys in document order) or YAML text of ``doc``.

    Raises `WorkflowLoadError` naming the field when a constant or param is not plain data (a builder may
    bind any Python value, which runs in-process but cannot be written to a file).
    """
    data = doc.to_data()
    try:
        if fmt == "json":
            return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (TypeError, ValueError, yaml.YAMLError):
        path = _unserializable(data) or []
        raise WorkflowLoadError(
            "this value is not plain JSON data (null, bool, number, string, list, object), so the workflow "
            "cannot be saved; pass it as a workflow input or build it inside a node",
            source=f"workflow {doc.name!r}",
            path=".".join(path) or None,
        ) from None


def _unserializable(value: Any, path: list[str] | None = None) -> list[str] | None:
    """The path of the first value in ``value`` that is not plain JSON data, or None."""
    path = path or []
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if value == value and value not in (float("inf"), float("-inf")) else path
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unserializable(item, [*path, str(index)])
            if found is not None:
                return found
        return None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        for key, item in value.items():
            found = _unserializable(item, [*path, key])
            if found is not None:
                return found
        return None
    return path


def save_workflow(doc: WorkflowDoc, path: str | Path, fmt: TextFormat | None = None) -> None:
    """Write ``doc`` to ``path`` as JSON or YAML (from the suffix when ``fmt`` is not given)."""
    path = Path(path)
    chosen: TextFormat = fmt or ("yaml" if path.suffix.lower() in (".yaml", ".yml") else "json")
    path.write_text(dump_workflow(doc, chosen), encoding="utf-8")


def field_path(data: Any, loc: tuple[int | str, ...], error_type: str) -> list[str]:
    """The part of a pydantic error location that names real fields of ``data``.

    pydantic appends union-member tags and ``[key]`` markers to locations; those are dropped so the path is
    what a user sees in the document. A missing field keeps its name as the last element.
    """
    path: list[str] = []
    current: Any = data
    for index, part in enumerate(loc):
        is_last = index == len(loc) - 1
        if isinstance(current, Mapping):
            key = str(part)
            if key == "in_" and "in" in current:
                key = "in"
            if key in current:
                path.append(key)
                current = current[key]
                continue
            if is_last and error_type == "missing":
                path.append(key)
            break
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(str(part))
            current = current[part]
            continue
        break
    return path


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown field; check its spelling (the format allows no other fields here)"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and error["loc"] == ("format",):
        return (
            f"this is not a rayweave workflow document: 'format' must be 'rayweave.workflow/1', "
            f"got {error.get('input')!r}"
        )
    if kind == "string_pattern_mismatch" and error["loc"] and error["loc"][-1] == "[key]":
        return "names must be identifiers (letters, digits, '_'; not starting with a digit)"
    return msg


def field_positions(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """Map each key path of a JSON/YAML text to the (line, column) of its key, or {} when it cannot tell.

    JSON is (nearly) YAML, so the YAML composer locates fields of both formats.
    """
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    positions: dict[tuple[str, ...], tuple[int, int]] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*prefix, str(key_node.value))
                positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                key = (*prefix, str(index))
                positions[key] = (item.start_mark.line + 1, item.start_mark.column + 1)
                walk(item, key)

    if root is not None:
        positions[()] = (root.start_mark.line + 1, root.start_mark.column + 1)
        walk(root, ())
    return positions


def locate_field(
    positions: Mapping[tuple[str, ...], tuple[int, int]], path: list[str]
) -> tuple[int | None, int | None]:
    # A missing field has no position of its own: point at the closest enclosing field that exists.
    for end in range(len(path), -1, -1):
        found = positions.get(tuple(path[:end]))
        if found is not None:
            return found
    return None, None
